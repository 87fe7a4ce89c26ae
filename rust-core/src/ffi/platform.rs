//! Helpers for a platform's own HTTP stack, which does not go through the
//! engine's client: iOS's background `URLSession` uploads handed-off parts
//! and must trust what the engine trusts.

use super::error::UploaderError;
use crate::UploadError;

/// The DER certificates in PEM texts (the configuration's
/// `extraRootCertificatesPem`), checked as the engine checks them, in order.
/// iOS anchors them, beside the system's roots, in the background session's
/// server-trust evaluation. Fails with `InvalidConfig` naming the entry.
#[uniffi::export]
pub fn certificates_der_from_pem(pems: Vec<String>) -> Result<Vec<Vec<u8>>, UploaderError> {
    let certs = crate::tls::parse_extra_roots(&pems).map_err(UploadError::from)?;
    Ok(certs.into_iter().map(|c| c.to_vec()).collect())
}
