//! The Switchyard proxy-wasm module. All decisions live in switchyard-core; this crate only
//! turns Envoy's callbacks into calls on it (see `host/`).

mod host;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(host::Root::default())
    });
}}
