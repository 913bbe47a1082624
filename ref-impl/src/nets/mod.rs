//! The networks: [`mlp`] for the 2-D toys (§3.4, Fig. 3) and [`edm`], EDM's `ddpm++` for
//! images (§5.1, App. B). Both implement the roles of [`crate::train::network`].

pub mod edm;
pub mod mlp;
