//! `uniffi-bindgen` at exactly the workspace's uniffi version, so the
//! generated bindings always match the scaffolding compiled into the library.

fn main() {
    uniffi::uniffi_bindgen_main()
}
