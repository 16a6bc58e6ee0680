"""One training step per stage: forward pass, losses, gradients, three Adam updates.

As the original, E+G, D_z and D_img are updated together from one forward pass:

- stage 1 (controller): ``fake = G(z_prior, c)``; E and D_z are idle.
  ``L_G = w_img * G_img + w_q * L_Q`` updates G; ``L_Dimg = D_img(x) + D_img(fake) + L_Q``
  updates D_img (with Q); ``w_mismatch`` and ``w_r1`` (not in the original) add the
  matching-aware term and the R1 gradient penalty to it.
- stages 2 and 3: ``z = E(x)``, ``fake = G(z, c)``;
  ``L_EG = w_pix * L1 + w_id * L_id + w_q * L_Q + w_img * G_img + w_z * E_z + w_tv * TV``
  updates E and G; ``L_Dz = D_z(z_prior) + D_z(z)`` updates D_z;
  ``L_Dimg`` as in stage 1 updates D_img.

With ``w_edit > 0`` (not in the original) stages 2/3 also decode ``z`` with the code of
another expression (:func:`edit_code`), ``edit = G(z, c')``: E+G add
``w_edit * (G_img(edit) + w_q * L_Q(edit))`` and D_img adds ``w_edit * (fake(edit) + L_Q(edit))``.
With ``w_paired > 0`` (not in the original) the batch carries a partner ``x'`` of each
face (same subject, another expression B, see :mod:`exprgan_tf.training.inputs`) and
its code ``c(B, t)`` (``t = 1``, or the partner's intensity with
``training.pair_intensities``); E+G add ``w_paired * (|x' - G(z, c(B, t))| +
w_id * L_id(x, G(z, c(B, t))))``. The edit term then judges ``G(z, c(B, 1))``: the
same decode when ``t = 1``, its own otherwise (and ``G(z, c(B, s))``, ``s ~ U(0, 1)``,
with ``training.edit_intensity="sampled"``). With ``w_gradient > 0`` (not in the
original) E+G add ``w_gradient * (L_grad + w_paired * L_grad_pair)``, the image-gradient
L1 (:func:`~exprgan_tf.losses.gradient_loss`) of the reconstruction and of the paired
decode against their targets. With ``w_expression > 0`` (not in the original) they add
``w_paired * w_expression * L_expr_pair``: the paired decode against its partner in a
frozen expression network's feature maps
(:mod:`~exprgan_tf.training.expression_features`).

The weights ``w_*`` come from the stage's :class:`~exprgan_tf.config.LossWeights`; a
term whose weight is 0 is still computed and logged when it is cheap, but left out of
the sum that is differentiated (so its backward pass is not run), and the identity
network is not run at all when ``w_id`` is 0 or there is no identity network.

Under ``training.precision="mixed_float16"`` the optimisers are
``keras.optimizers.LossScaleOptimizer``s: each backward pass is seeded with the loss
scale and the optimiser unscales (see :mod:`exprgan_tf.training.precision`).

G's targets - the L1 target, D_img's real faces (``x`` above), L_id's real faces and a
blend G's base - are ``batch["target"]`` when the batch has one (the faces without the
unsharp mask, ``preprocess.sharpen_targets`` off), else ``x`` itself; E always sees
``x``.

Every random draw of a step (the code c and the prior z) arrives with the batch (see
:mod:`exprgan_tf.training.inputs`), so a step is a pure function of the batch and the
variables: this is what makes resumed and distributed runs equal to plain ones.

Why a custom loop and not ``keras.Model.fit`` with a ``train_step``: one forward pass
feeds three optimisers (E+G, D_z, D_img), each differentiating its own loss on one
persistent tape, as the original does; and a run must resume bit-exactly in the middle
of an epoch (the position in the epoch and every random draw live in the checkpoint),
which ``fit``'s epoch loop does not offer. The losses of a stage still read top to
bottom in one method (:meth:`StageStep._stage23_losses`), as in the keras-io GAN
examples.

Each replica averages its losses over its own part of the batch and scales them by
``1 / num_replicas``; the optimisers sum the gradients over replicas, so the update
equals the single-device one on the whole batch (BatchNorm statistics are synchronised).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from exprgan_tf import losses as L
from exprgan_tf.preprocessing import gaussian_blur
from exprgan_tf.controller import _code_ops
from exprgan_tf.layers import paste
from exprgan_tf.models.decoder import decode


def other_class(label, code, num_classes, intensity_index=0):
    """A class other than ``label`` (one-hot ``[N, K]``) for every sample, drawn from the
    sample's own code: ``(y + 1 + floor(|u_i| (K - 1))) mod K`` with ``u_i`` its code's
    ``intensity_index``-th intensity (uniform in [0, 1) whatever the class). A pure
    function of the sample, so it does not depend on how a batch is split over replicas.
    """
    k = num_classes
    true = tf.argmax(label, axis=-1, output_type=tf.int32)
    u = tf.abs(tf.cast(code[:, intensity_index], tf.float32))
    return (true + 1 + tf.minimum(tf.cast(u * (k - 1), tf.int32), k - 2)) % k


def code_intensity(code):
    """The intensity ``[N]`` (float32) of codes ``[N, K*D]`` laid out by
    :func:`~exprgan_tf.controller.intensity_code`: ``|code[:, 0]|``, the magnitude every
    entry of a test-time code shares."""
    return tf.abs(tf.cast(code[:, 0], tf.float32))


def edit_code(label, code, num_classes, intensity_dim, draw=None):
    """``(target [N], code' [N, K*D])``: the code of another expression
    (:func:`other_class` on the second intensity of ``draw``, default ``code``) with the
    same intensities ``|u|``."""
    target = other_class(label, code if draw is None else draw, num_classes,
                         min(1, intensity_dim - 1))
    magnitudes = tf.abs(code[:, :intensity_dim])
    return target, _code_ops(target, magnitudes, num_classes, intensity_dim)

LOSS_KEYS = {
    1: ("G_img", "L_Q", "D_img_real", "D_img_fake", "D_img_mismatch", "D_img_r1", "loss_G",
        "loss_D_img"),
    2: ("L1", "L_id", "L_Q", "G_img", "E_z", "TV", "D_z_prior", "D_z_enc", "D_img_real",
        "D_img_fake", "D_img_mismatch", "D_img_r1", "G_edit", "L_Q_edit", "L1_pair",
        "L_id_pair", "G_mask", "L_grad", "L_grad_pair", "L_expr_pair", "L_Q_real",
        "D_img_pair_real", "loss_EG", "loss_D_z", "loss_D_img"),
}
LOSS_KEYS[3] = LOSS_KEYS[2]


class StageStep:
    """A compiled train step for one stage.

    Args (keyword only):
        stage: 1, 2 or 3.
        networks: :class:`~exprgan_tf.models.Networks`.
        optimizers: dict with ``"EG"``, ``"D_z"`` and ``"D_img"`` Keras optimisers,
            already built on their variables.
        weights: the stage's :class:`~exprgan_tf.config.LossWeights`.
        num_classes: expression classes (``model.num_classes``).
        intensity_dim: code dims per class (``model.intensity_dim``).
        identity_features: frozen model ``[-1, 1] images -> list of maps``, or ``None``.
        identity_layer_weights: beta_l per identity layer (empty = all 1).
        identity_images: L_id on the first this many faces of each replica's batch
            (``identity.images_per_step``; 0 = all).
        strategy: the ``tf.distribute`` strategy the variables were created under.
        jit_compile: compile the per-replica step with XLA.
        skip_zero_weight_terms: leave the terms whose weight is 0 out of the
            differentiated sums (same values and gradients, fewer backward ops).
            ``False`` only to measure or verify that (benchmarks/step_ab.py).
        dimg_blur: sigma (pixels) of a Gaussian blur applied to every image D_img
            sees, real or generated (``training.dimg_blur``; 0 = none, the original).
        pixel_weights: per-pixel weights ``[S, S, 1]`` of ``L1`` and ``L1_pair``
            (``training.expression_regions``), or ``None`` for a plain mean.
        paste_regions: the editor's paste map ``r`` ``[S, S, 1]`` in [0, 1]
            (``training.paste_regions``): every decode of E's code becomes
            ``r * G + (1 - r) * base`` (:func:`~exprgan_tf.layers.paste`) before any loss
            sees it; ``None``: G's whole face.
        dimg_min_intensity: D_img's real, mismatch and reconstruction terms
            (``D_img_real``, ``D_img_mismatch``, ``D_img_fake``, ``G_img``) count only
            the faces whose code's intensity ``|code[:, 0]|`` is at least this
            (``training.dimg_min_intensity``, with ``training.codes="intensity"``, where
            that is the face's true intensity); 0: every face (the original). Each
            replica averages over its own such faces, so with several replicas the
            update is not exactly the single-device one (see the module docstring).
        pair_change: ``k`` of ``training.pair_change``: ``L1_pair`` weighs each pixel
            ``(1 + k * m) / (1 + k * mean(m))`` on top of ``pixel_weights``, ``m`` the
            batch's ``pair_change`` map of each partner (``[N, S, S, 1]`` in {0, 1},
            where it differs from its face); 0: no such weight.
        pair_blur: sigma (pixels) of ``training.pair_blur``: ``L1_pair`` compares the
            paired decode and its partner through a Gaussian blur of this sigma (after
            the paste, with the same per-pixel weights); 0: no blur.
        pair_l1_min_intensity: ``L1_pair`` and ``L_grad_pair`` count only the partners
            whose ``|pair_code[:, 0]|`` is at least this (``training.pair_l1_min_intensity``),
            averaged over those; 0: every partner.
        q_real: Q learns the code from real faces instead of G's (``training.q_real``):
            D_img's loss takes ``L_Q_real`` (Q on the batch's faces at ``code`` and on
            the partners at ``pair_code``) and ``D_img_pair_real`` (the partners as real
            faces of ``pair_target``) in place of ``L_Q`` and ``L_Q_edit``; E+G's
            ``L_Q`` and ``L_Q_edit`` are unchanged. Stages 2 and 3; ``False``: the
            original.
        dimg_pair_real: with ``q_real``, whether D_img's loss takes ``D_img_pair_real``
            (``training.dimg_pair_real``); ``False``: the partners teach Q alone.
        expression_features: frozen model ``[-1, 1] images -> list of maps`` of
            ``L_expr_pair`` (:func:`~exprgan_tf.training.expression_features.
            expression_feature_model`), or ``None``; used when ``weights.expression > 0``
            and the paired term is on.
        dimg_intensity_label: D_img is shown each face's one-hot label times the
            intensity of its code ``|code[:, 0]|`` (``training.dimg_intensity_label``):
            it judges "a real face of this expression at this intensity", so a neutral
            face is an example of the zero label, not of an expression; ``False``: the
            one-hot label (the original).

    Call it with a distributed batch (a dict with ``image``, ``label``, ``code``,
    ``z_prior``); it returns a dict of global-batch losses (scalars).
    ``trace_count`` counts how often the step was traced (1 in a healthy run).
    """

    def __init__(self, *, stage, networks, optimizers, weights, num_classes=6,
                 intensity_dim=5, identity_features=None, identity_layer_weights=(),
                 identity_images=0, strategy=None, jit_compile=False, skip_zero_weight_terms=True,
                 dimg_blur=0.0, pixel_weights=None, paste_regions=None,
                 dimg_min_intensity=0.0, pair_change=0.0, pair_l1_min_intensity=0.0,
                 q_real=False, dimg_pair_real=True, dimg_intensity_label=False,
                 pair_blur=0.0, expression_features=None):
        if dimg_blur < 0:
            raise ValueError(f"dimg_blur must be >= 0. Received: dimg_blur={dimg_blur!r}")
        if stage not in (1, 2, 3):
            raise ValueError(f"stage must be 1, 2 or 3. Received: stage={stage!r}")
        self.stage = stage
        self.nets = networks
        self.optimizers = optimizers
        self.weights = weights
        self.num_classes = num_classes
        self.intensity_dim = intensity_dim
        self.identity_features = identity_features
        self.identity_layer_weights = tuple(identity_layer_weights)
        if isinstance(identity_images, bool) or not isinstance(identity_images, int) \
                or identity_images < 0:
            raise ValueError("identity_images must be an integer >= 0. "
                             f"Received: identity_images={identity_images!r}")
        self.identity_images = identity_images
        self.strategy = strategy or tf.distribute.get_strategy()
        self.jit_compile = jit_compile
        self.skip_zero_weight_terms = skip_zero_weight_terms
        self.dimg_blur = float(dimg_blur)
        self.pixel_weights = (None if pixel_weights is None
                              else tf.constant(pixel_weights, tf.float32))
        self.paste_regions = (None if paste_regions is None
                              else tf.constant(paste_regions, tf.float32))
        if not 0.0 <= dimg_min_intensity <= 1.0:
            raise ValueError("dimg_min_intensity must be in [0, 1]. "
                             f"Received: dimg_min_intensity={dimg_min_intensity!r}")
        self.dimg_min_intensity = float(dimg_min_intensity)
        if not pair_change >= 0:
            raise ValueError(f"pair_change must be >= 0. Received: pair_change={pair_change!r}")
        self.pair_change = float(pair_change)
        if not pair_blur >= 0:
            raise ValueError(f"pair_blur must be >= 0. Received: pair_blur={pair_blur!r}")
        self.pair_blur = float(pair_blur)
        if not 0.0 <= pair_l1_min_intensity <= 1.0:
            raise ValueError("pair_l1_min_intensity must be in [0, 1]. "
                             f"Received: pair_l1_min_intensity={pair_l1_min_intensity!r}")
        self.pair_l1_min_intensity = float(pair_l1_min_intensity)
        self.q_real = bool(q_real)
        self.dimg_pair_real = bool(dimg_pair_real)
        self.dimg_intensity_label = bool(dimg_intensity_label)
        if weights.expression > 0 and stage > 1 and weights.paired > 0 \
                and expression_features is None:
            raise ValueError("losses.expression > 0 needs expression_features (the frozen "
                             "expression network, training.expression_network).")
        self.expression_features = expression_features
        self.trace_count = 0
        self.keys = LOSS_KEYS[stage]
        self._replica_fn = tf.function(self._replica_step, jit_compile=jit_compile) \
            if jit_compile else self._replica_step
        self._step = tf.function(self._distributed_step)
        # The variables each optimiser owns (fixed for the whole stage).
        if stage == 1:
            self.eg_vars = networks.decoder.trainable_variables
        else:
            self.eg_vars = (networks.encoder.trainable_variables
                            + networks.decoder.trainable_variables)
        self.dz_vars = networks.latent_discriminator.trainable_variables
        self.dimg_vars = networks.image_discriminator.trainable_variables

    @property
    def uses_identity(self) -> bool:
        return (self.stage > 1 and self.identity_features is not None
                and self.weights.identity > 0)

    def __call__(self, distributed_batch):
        return self._step(distributed_batch)

    def rebuilt(self, **changes) -> "StageStep":
        """A new, untraced step on the same networks and optimisers, with ``changes``
        to the constructor's arguments."""
        arguments = dict(
            stage=self.stage, networks=self.nets, optimizers=self.optimizers,
            weights=self.weights, num_classes=self.num_classes,
            intensity_dim=self.intensity_dim, identity_features=self.identity_features,
            identity_layer_weights=self.identity_layer_weights, strategy=self.strategy,
            jit_compile=self.jit_compile, skip_zero_weight_terms=self.skip_zero_weight_terms,
            dimg_blur=self.dimg_blur, pixel_weights=self.pixel_weights,
            paste_regions=self.paste_regions, dimg_min_intensity=self.dimg_min_intensity,
            pair_change=self.pair_change, pair_l1_min_intensity=self.pair_l1_min_intensity,
            q_real=self.q_real, dimg_pair_real=self.dimg_pair_real,
            dimg_intensity_label=self.dimg_intensity_label, pair_blur=self.pair_blur,
            expression_features=self.expression_features)
        return StageStep(**{**arguments, **changes})

    # --- graph code --------------------------------------------------------------
    def _distributed_step(self, batch):
        self.trace_count += 1  # Python side effect: runs once per trace
        per_replica = self.strategy.run(self._replica_fn, args=(batch,))
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in per_replica.items()}

    def _replica_step(self, batch):
        scale = 1.0 / tf.cast(self.strategy.num_replicas_in_sync, tf.float32)
        if self.stage == 1:
            tape, values = self._stage1_losses(batch)
            updates = (("EG", "loss_G", self.eg_vars), ("D_img", "loss_D_img", self.dimg_vars))
        else:
            tape, values = self._stage23_losses(batch)
            updates = (("EG", "loss_EG", self.eg_vars), ("D_z", "loss_D_z", self.dz_vars),
                       ("D_img", "loss_D_img", self.dimg_vars))
        for opt_name, loss_name, variables in updates:
            grads = [g * scale for g in self._gradients(tape, opt_name, values[loss_name],
                                                         variables)]
            self.optimizers[opt_name].apply_gradients(zip(grads, variables))
        del tape
        return {k: values[k] * scale for k in self.keys}

    def _gradients(self, tape, opt_name, loss, variables):
        opt = self.optimizers[opt_name]
        if isinstance(opt, keras.optimizers.LossScaleOptimizer):
            # Seeding the backward pass with the loss scale is the gradient of the scaled
            # loss (what opt.scale_loss does) without scaling inside the tape; the
            # optimiser unscales, and skips the update if anything overflowed.
            return tape.gradient(loss, variables,
                                 output_gradients=opt.scale_loss(tf.ones_like(loss)))
        return tape.gradient(loss, variables)

    # --- the losses of a stage -----------------------------------------------------
    def _stage1_losses(self, batch):
        """Stage 1: G from the prior against D_img (with Q)."""
        w = self.weights
        label, code = batch["label"], batch["code"]
        target = batch.get("target", batch["image"])
        v = {}
        with tf.GradientTape(persistent=True) as tape:
            fake = decode(self.nets.decoder, batch["z_prior"], code, training=True)
            self._image_terms(target, fake, label, code, v, batch.get("draw", code))
            v["loss_G"] = self._weighted_sum(((w.image_adversarial, "G_img"), (w.q, "L_Q")), v)
            v["loss_D_img"] = self._image_discriminator_loss(v)
        return tape, v

    def _stage23_losses(self, batch):
        """Stages 2 and 3: E+G reconstruct (and edit), D_z and D_img judge."""
        w = self.weights
        image, label, code = batch["image"], batch["label"], batch["code"]
        target = batch.get("target", image)  # what G gives back (module docstring)
        v = {}
        with tf.GradientTape(persistent=True) as tape:
            # Forward pass: encode, decode with the face's own code.
            z = self.nets.encoder(image, training=True)
            masks = []  # a blend G's masks over this step's decodes, for G_mask
            seen = self._face_seen(batch, target)
            fake = self._decode(z, code, target, masks, seen)
            # The terms of each network's loss.
            self._image_terms(target, fake, label, code, v, batch.get("draw", code))
            prior_logit = self.nets.latent_discriminator(batch["z_prior"], training=True)
            enc_logit = self.nets.latent_discriminator(z, training=True)
            v["D_z_prior"] = L.real_loss(prior_logit)
            v["D_z_enc"] = L.fake_loss(enc_logit)
            v["E_z"] = L.generator_loss(enc_logit)
            v["L1"] = L.pixel_loss(target, fake, self.pixel_weights)
            v["TV"] = L.total_variation(fake)
            v["L_grad"] = (L.gradient_loss(target, fake, self.pixel_weights)
                           if w.gradient > 0 else tf.constant(0.0))
            real_feats = self._real_identity_features(batch) if self.uses_identity else None
            v["L_id"] = (self._identity_loss(real_feats, fake) if self.uses_identity
                         else tf.constant(0.0))
            self._paired_terms(batch, z, target, real_feats, v, masks, seen)
            self._edit_terms(batch, z, target, v, masks, seen)
            self._real_code_terms(batch, v)
            v["G_mask"] = (tf.add_n([tf.reduce_mean(m) for m in masks]) / len(masks)
                           if masks else tf.constant(0.0))
            # The three losses.
            v["loss_EG"] = self._weighted_sum(
                ((w.pixel, "L1"), (w.identity, "L_id"), (w.q, "L_Q"),
                 (w.image_adversarial, "G_img"), (w.latent_adversarial, "E_z"),
                 (w.total_variation, "TV"), (w.gradient, "L_grad")), v)
            if w.paired > 0:
                v["loss_EG"] += w.paired * (v["L1_pair"] + w.identity * v["L_id_pair"]
                                            + w.gradient * v["L_grad_pair"])
                if w.expression > 0:
                    v["loss_EG"] += w.paired * w.expression * v["L_expr_pair"]
            if w.edit > 0:
                v["loss_EG"] += w.edit * (v["G_edit"] + w.q * v["L_Q_edit"])
            if w.mask > 0:
                v["loss_EG"] += w.mask * v["G_mask"]
            v["loss_D_z"] = v["D_z_prior"] + v["D_z_enc"]
            v["loss_D_img"] = self._image_discriminator_loss(v)
        return tape, v

    # --- the terms -------------------------------------------------------------------
    def _image_terms(self, image, fake, label, code, v, draw):
        """D_img on real and fake faces: ``D_img_real``, ``D_img_fake``, ``G_img``,
        ``L_Q`` (Q's code regression on the fake), ``D_img_mismatch`` (real faces
        under a wrong label drawn from ``draw``; 0 unless ``w_mismatch > 0``) and
        ``D_img_r1`` (the R1 penalty on the real faces; 0 unless ``w_r1 > 0``). Under
        ``dimg_min_intensity`` the adversarial terms count only the faces coded at that
        intensity or above: a neutral face is no example of its sequence's label."""
        counted = None
        if self.dimg_min_intensity > 0:
            counted = tf.cast(code_intensity(code) >= self.dimg_min_intensity, tf.float32)
        if self.weights.r1 > 0:
            # R1: the squared gradient of D_img's real logit with respect to the real
            # faces. The outer tape records this inner gradient, so D_img's update
            # differentiates through it (a second-order term).
            with tf.GradientTape() as input_tape:
                input_tape.watch(image)
                real_logit, real_q = self._image_discriminator(image, label, code)
                total = tf.reduce_sum(tf.cast(real_logit, tf.float32))
            grad = tf.cast(input_tape.gradient(total, image), tf.float32)
            v["D_img_r1"] = 0.5 * tf.reduce_mean(tf.reduce_sum(tf.square(grad), axis=[1, 2, 3]))
        else:
            real_logit, real_q = self._image_discriminator(image, label, code)
            v["D_img_r1"] = tf.constant(0.0)
        v["real_q"] = real_q  # Q's reading of the real faces (q_real)
        fake_logit, fake_code = self._image_discriminator(fake, label, code)
        v["L_Q"] = L.q_loss(fake_code, code, self.num_classes)
        v["D_img_real"] = L.real_loss(real_logit, counted)
        v["D_img_fake"] = L.fake_loss(fake_logit, counted)
        v["G_img"] = L.generator_loss(fake_logit, counted)
        if self.weights.mismatch > 0:
            wrong = tf.one_hot(other_class(label, draw, self.num_classes), self.num_classes,
                               dtype=label.dtype)
            mismatch_logit, _ = self._image_discriminator(image, wrong, code)
            v["D_img_mismatch"] = L.fake_loss(mismatch_logit, counted)
        else:
            v["D_img_mismatch"] = tf.constant(0.0)

    def _image_discriminator(self, images, label, code):
        """``(logit, q)`` of D_img on ``images`` shown with ``label`` (one-hot; with
        ``dimg_intensity_label`` scaled by the intensity of ``code``, the images' code),
        through the ``dimg_blur`` Gaussian when it is set: detail finer than the blur
        (the renders' sensor noise, a generator's stripes) is then invisible to D_img,
        so the adversarial gradient cannot ask G for it and only the pixel terms shape
        it."""
        if self.dimg_intensity_label:
            label = label * tf.cast(code_intensity(code)[:, None], label.dtype)
        if self.dimg_blur > 0:
            images = tf.cast(gaussian_blur(images, self.dimg_blur), images.dtype)
        return self.nets.image_discriminator([images, label], training=True)

    def _image_discriminator_loss(self, v):
        """``L_Dimg = D_img(x) + D_img(fake) + L_Q [+ w_mismatch * mismatch]
        [+ w_r1 * R1] [+ w_edit * (D_img(edit) + L_Q(edit))]``: the one place it is
        assembled."""
        w = self.weights
        # Q learns the code from G's faces (the original, InfoGAN's way), or with q_real
        # from real faces at known intensities (and D_img sees the partners as real,
        # unless dimg_pair_real is off).
        if self.q_real:
            q_term = v["L_Q_real"] + (v["D_img_pair_real"] if self.dimg_pair_real else 0.0)
        else:
            q_term = v["L_Q"]
        loss = v["D_img_real"] + v["D_img_fake"] + q_term
        if w.mismatch > 0:
            loss += w.mismatch * v["D_img_mismatch"]
        if w.r1 > 0:
            loss += w.r1 * v["D_img_r1"]
        if self.stage > 1 and w.edit > 0:
            loss += w.edit * (v["D_img_edit"] + (0.0 if self.q_real else v["L_Q_edit"]))
        return loss

    def _face_seen(self, batch, base):
        """The faces G is shown while it edits ``base``: ``base`` itself, or with
        ``training.hole_view="partner"`` (``batch["view_image"]``) another render of
        each face in its own pose inside G's hole (the decoder's ``G_face_hole`` map)
        and the face around it."""
        if "view_image" not in batch:
            return base
        hole = self.nets.decoder.get_layer("G_face_hole").regions
        return paste(batch["view_image"], base, hole)

    def _decode(self, z, code, base, masks, seen=None):
        """G(z, code) over the faces ``base`` (shown to G as ``seen``, :meth:`_face_seen`;
        ``base`` when None), pasted into them through ``paste_regions`` when set; a
        blend G's mask is added to ``masks``."""
        image, mask = decode(self.nets.decoder, z, code, base if seen is None else seen,
                             training=True, with_mask=True)
        if mask is not None:
            masks.append(mask)
        if self.paste_regions is not None:
            image = paste(image, base, self.paste_regions)
        return image

    def _paired_terms(self, batch, z, base, real_feats, v, masks, seen=None):
        """``L1_pair`` and ``L_id_pair``: the decode of ``z`` (over the faces ``base``)
        with the partner's code against the partner face (0 unless ``w_paired > 0``)."""
        if self.weights.paired <= 0:
            v["L1_pair"] = v["L_id_pair"] = v["L_grad_pair"] = tf.constant(0.0)
            v["L_expr_pair"] = tf.constant(0.0)
            return
        if "pair_image" not in batch:
            raise ValueError("losses.paired > 0 needs batches with pair_image, "
                             "pair_target and pair_code (give the Trainer pair_groups).")
        v["pair_edit"] = self._decode(z, batch["pair_code"], base, masks, seen)
        weights = self.pixel_weights
        grad_weights = self.pixel_weights
        if self.pair_l1_min_intensity > 0:
            # Only the partners at least this intense are targets; the mean is over them
            # (0 in a batch without one). The others are there for D_img and Q (q_real).
            counted = tf.cast(code_intensity(batch["pair_code"]) >= self.pair_l1_min_intensity,
                              tf.float32)
            counted = tf.math.divide_no_nan(counted, tf.reduce_mean(counted))
            counted = tf.reshape(counted, [-1, 1, 1, 1])
            weights = counted if weights is None else weights * counted
            grad_weights = weights
        if self.pair_change > 0:
            if "pair_change" not in batch:
                raise ValueError("pair_change > 0 needs batches with pair_change (the "
                                 "partners' change maps, training.pair_pose=input).")
            change = L.change_weights(batch["pair_change"], self.pair_change)
            weights = change if weights is None else weights * change
        if self.pair_blur > 0:
            v["L1_pair"] = L.pixel_loss(gaussian_blur(batch["pair_image"], self.pair_blur),
                                        gaussian_blur(v["pair_edit"], self.pair_blur), weights)
        else:
            v["L1_pair"] = L.pixel_loss(batch["pair_image"], v["pair_edit"], weights)
        v["L_grad_pair"] = (L.gradient_loss(batch["pair_image"], v["pair_edit"],
                                            grad_weights)
                            if self.weights.gradient > 0 else tf.constant(0.0))
        v["L_id_pair"] = (self._identity_loss(real_feats, v["pair_edit"])
                          if self.uses_identity else tf.constant(0.0))
        v["L_expr_pair"] = (L.feature_loss(self._expression_maps(batch["pair_image"]),
                                           self._expression_maps(v["pair_edit"]))
                            if self.weights.expression > 0 else tf.constant(0.0))

    def _expression_maps(self, images):
        """The expression network's maps of ``images`` (a list, one per layer)."""
        maps = self.expression_features(images, training=False)
        return maps if isinstance(maps, (list, tuple)) else [maps]

    def _edit_terms(self, batch, z, base, v, masks, seen=None):
        """``G_edit``, ``L_Q_edit`` and D_img's ``D_img_edit`` on ``z`` decoded (over the
        faces ``base``) with another expression's code (0 unless ``w_edit > 0``). With
        the paired term the edit is the partner's expression at intensity 1: the paired
        decode itself, or its own decode of ``batch["edit_code"]`` when the partners
        come at lower intensities or ``training.edit_intensity="sampled"`` draws the
        edit's intensity."""
        if self.weights.edit <= 0:
            v["G_edit"] = v["L_Q_edit"] = tf.constant(0.0)
            return
        if self.weights.paired <= 0:
            target, code_t = edit_code(batch["label"], batch["code"], self.num_classes,
                                       self.intensity_dim, batch.get("draw"))
            edit = self._decode(z, code_t, base, masks, seen)
        elif "edit_code" in batch:
            target, code_t = batch["pair_target"], batch["edit_code"]
            edit = self._decode(z, code_t, base, masks, seen)
        else:
            target, code_t, edit = batch["pair_target"], batch["pair_code"], v["pair_edit"]
        edit_logit, edit_q = self._image_discriminator(
            edit, tf.one_hot(target, self.num_classes, dtype=batch["label"].dtype), code_t)
        v["G_edit"] = L.generator_loss(edit_logit)
        v["L_Q_edit"] = L.q_loss(edit_q, code_t, self.num_classes)
        v["D_img_edit"] = L.fake_loss(edit_logit)

    def _real_code_terms(self, batch, v):
        """``q_real``: ``D_img_pair_real`` (D_img shown each partner, at its intensity, as
        a real face of its expression) and ``L_Q_real`` (the mean of Q's code regression
        on the real faces and on the partners, each at its own code); 0 otherwise."""
        if not self.q_real:
            v["L_Q_real"] = v["D_img_pair_real"] = tf.constant(0.0)
            return
        if "pair_image" not in batch:
            raise ValueError("q_real needs batches with partners (pair_image, pair_target "
                             "and pair_code at the partners' intensities).")
        label = tf.one_hot(batch["pair_target"], self.num_classes, dtype=batch["label"].dtype)
        pair_logit, pair_q = self._image_discriminator(batch["pair_image"], label,
                                                       batch["pair_code"])
        v["D_img_pair_real"] = L.real_loss(pair_logit)
        v["L_Q_real"] = 0.5 * (L.q_loss(v["real_q"], batch["code"], self.num_classes)
                               + L.q_loss(pair_q, batch["pair_code"], self.num_classes))

    def _weighted_sum(self, terms, values):
        """``sum(weight * values[name])`` in the order given, leaving out the terms
        whose weight is 0: they add exactly nothing to a finite loss or gradient, but
        the tape would still run their backward passes (e.g. TV's and E_z's in stage
        2). They are still computed and logged."""
        used = [weight * values[name] for weight, name in terms
                if weight or not self.skip_zero_weight_terms]
        if not used:  # every weight 0: keep the terms so the gradients are 0, not None
            used = [weight * values[name] for weight, name in terms]
        total = used[0]
        for t in used[1:]:
            total = total + t
        return total

    def _real_identity_features(self, batch):
        """The identity features of the real faces, cached in the batch or computed;
        no gradient flows into them."""
        feats = batch.get("identity_features")
        if feats is None:  # computed here, for the faces L_id is measured on only
            feats = self.identity_features(
                self._identity_share(batch.get("target", batch["image"])), training=False)
            feats = feats if isinstance(feats, (list, tuple)) else [feats]
        else:              # cached for the whole batch (a tuple, one map per layer)
            feats = [self._identity_share(f) for f in feats]
        return [tf.stop_gradient(f) for f in feats]

    def _identity_share(self, x):
        """The first ``identity_images`` rows of ``x`` (all when 0): the faces L_id is
        measured on."""
        return x[:self.identity_images] if self.identity_images else x

    def _identity_loss(self, real_feats, fake):
        """L_id between precomputed (stopped) features of real faces and ``fake`` (both
        cut to the faces L_id is measured on)."""
        fake_feats = self.identity_features(self._identity_share(fake), training=False)
        fake_feats = fake_feats if isinstance(fake_feats, (list, tuple)) else [fake_feats]
        return L.identity_feature_loss(real_feats, fake_feats,
                                       self.identity_layer_weights or None)
