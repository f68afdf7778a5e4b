"""The per-slice energy estimator: CPU time measured in the kernel, turned
into cycles and joules by a power model, attributed to slices by their
measured share of the work. Every figure carries the method behind it."""
