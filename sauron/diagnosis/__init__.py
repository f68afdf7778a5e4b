"""Why a slice is late or lossy: the delay factors of the network functions
that serve it, traced in the kernel only while the slice is degraded."""
