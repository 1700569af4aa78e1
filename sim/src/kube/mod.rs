//! Kubernetes API stand-in: what the zerofn controller, kubectl and the Helm
//! chart use, served from memory.
