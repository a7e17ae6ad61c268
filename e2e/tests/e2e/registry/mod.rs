//! Needs an image builder (buildah), a docker-registry and skopeo
//! (scripts/setup.sh installs them), besides the built module.

mod image;
