"""Image blending with DIP (the student study 003, Section 4.2, appendices A3 and A4).

A network output ``F`` is fitted to a foreground ``A``, a background ``B`` and a coarse
mask with region-wise losses instead of a pixel-wise data term.

- `spectral_lab.blend.objective`: the A3 objective, one differentiable torch function per
  term on batched outputs ``(R, C, H, W)`` returning one value per run ``(R,)``, and
  `blend_loss` combining them with the paper's weights.
- `spectral_lab.blend.baselines`: alpha, Poisson and Laplacian-pyramid blending (numpy).
- `spectral_lab.blend.metrics`: the A4 metrics GFF, GFP, BSI and the masked SSIM (numpy,
  float64), and a streaming helper scoring every frame of a trajectory.

Nothing is imported here, so ``import spectral_lab.blend`` pulls in neither torch nor
scikit-image; import the submodule you need.
"""
