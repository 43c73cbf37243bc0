//! The Switchyard proxy-wasm module. All decisions live in switchyard-core; this crate only
//! turns Envoy's callbacks into calls on it (see `host/`).

mod host;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    // A panic kills the VM for every request of its worker: at least say why, loudly.
    std::panic::set_hook(Box::new(|info| {
        let _ = proxy_wasm::hostcalls::log(
            proxy_wasm::types::LogLevel::Critical,
            &format!("switchyard filter panicked: {info}"),
        );
    }));
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(host::Root::default())
    });
}}
