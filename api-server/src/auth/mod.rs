//! Who is calling and what it may do: authentication, principals and the role table, and
//! how secrets are stored and compared.

pub mod authenticate;
pub mod principal;
pub mod secrets;

pub use authenticate::{
    PresentedSecret, RequestFacts, UserSession, authenticate, authenticate_user,
};
pub use principal::{Gate, Principal, PrincipalKind, role_permits};
pub use secrets::{TokenRejection, check_token, csrf_token, hash_secret, hashes_match};
