//! Needs the meshes' own tools, istioctl and egctl, built at pinned versions by
//! scripts/check-manifests.sh (about 30 minutes the first time), and Envoy.
//! Ignored unless asked for (`make check-manifests`).

mod egctl_translate;
