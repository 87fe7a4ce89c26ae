//! `certificates_der_from_pem`: the configured roots as the DER that iOS
//! anchors in its background session's trust evaluation of handed-off parts.

use s3bgu_core::ffi::{certificates_der_from_pem, UploaderError};
use s3bgu_testkit::tls::TestCa;

#[test]
fn pem_roots_come_back_as_their_der_in_order() {
    let a = TestCa::new("root a");
    let b = TestCa::new("root b");
    // One entry may hold several certificates, as in the configuration.
    let both = format!("{}\n{}", a.pem(), b.pem());
    let der = certificates_der_from_pem(vec![both, a.pem()]).unwrap();
    assert_eq!(der, vec![a.der(), b.der(), a.der()]);
    assert!(certificates_der_from_pem(vec![]).unwrap().is_empty());
}

#[test]
fn an_entry_that_is_not_a_certificate_is_invalid_config_naming_it() {
    let a = TestCa::new("root a");
    for bad in [
        "not pem at all",
        "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
    ] {
        match certificates_der_from_pem(vec![a.pem(), bad.to_string()]) {
            Err(UploaderError::InvalidConfig { detail: m }) => {
                assert!(m.contains("extraRootCertificatesPem[1]"), "{m}");
                assert!(!m.contains(bad), "the message quotes the entry: {m}");
            }
            other => panic!("{bad:?} gave {other:?}"),
        }
    }
}
