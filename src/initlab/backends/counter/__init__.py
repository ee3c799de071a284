"""The counter-based generator: every value a pure function of (seed, the parameter's qualified name, the
element's global index) -- Philox4x32-10 (:mod:`.philox`), the uniform/normal/truncated-normal transforms
(:mod:`.counter`, the numpy reference), the CPU kernel (:mod:`.kernels_numba`, optional), the CUDA kernel
(:mod:`.kernels_triton`, optional) and ``counter_fill_`` for catalog draws on torch tensors (:mod:`.fill`).
Like the rest of the backends it imports only the catalog, numpy, scipy and torch (numba and triton when
installed)."""
