use proxy_wasm::traits::*;
use proxy_wasm::types::*;
proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(R { mode: 0 }) });
}}
struct R { mode: u8 }
impl Context for R {}
impl RootContext for R {
    fn on_configure(&mut self, _: usize) -> bool {
        let c = self.get_plugin_configuration().unwrap_or_default();
        self.mode = match c.as_slice() { b"noop" => 0, b"pause" => 1, b"calls" => 2, b"allhdrs" => 3, b"meta" => 4, b"resp" => 5, _ => 0 };
        true
    }
    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> { Some(Box::new(H { mode: self.mode })) }
    fn get_type(&self) -> Option<ContextType> { Some(ContextType::HttpContext) }
}
struct H { mode: u8 }
impl Context for H {}
impl HttpContext for H {
    fn on_http_request_headers(&mut self, _: usize, eos: bool) -> Action {
        if self.mode == 2 {
            self.remove_http_request_header("x-a"); self.remove_http_request_header("x-b");
            let _ = self.get_http_request_header(":method"); let _ = self.get_http_request_header(":path");
            let _ = self.get_http_request_header("authorization"); let _ = self.get_http_request_header("content-length");
        }
        if self.mode == 3 { let _ = self.get_http_request_headers(); }
        if self.mode == 4 {
            let _ = self.get_property(vec!["xds", "upstream_host_metadata", "filter_metadata", "switchyard", "deployment"]);
            let _ = self.get_property(vec!["switchyard_request"]);
        }
        if self.mode >= 1 && !eos { Action::Pause } else { Action::Continue }
    }
    fn on_http_request_body(&mut self, size: usize, eos: bool) -> Action {
        if self.mode == 0 { return Action::Continue; }
        if !eos { return Action::Pause; }
        let b = self.get_http_request_body(0, size).unwrap_or_default();
        if self.mode == 2 {
            self.set_property(vec!["switchyard_request"], Some(&b[..40.min(b.len())]));
            self.set_http_request_header("x-c", Some("1"));
            self.set_http_request_header("x-envoy-upstream-rq-timeout-ms", Some("60000"));
        }
        Action::Continue
    }
    fn on_http_response_body(&mut self, size: usize, eos: bool) -> Action {
        if self.mode != 5 { return Action::Continue; }
        if !eos { return Action::Pause; }
        let b = self.get_http_response_body(0, size).unwrap_or_default();
        self.set_http_response_header("content-length", Some(&b.len().to_string()));
        self.set_http_response_body(0, size, &b);
        Action::Continue
    }
    fn on_http_response_headers(&mut self, _: usize, eos: bool) -> Action {
        if self.mode == 5 && !eos { return Action::Pause; }
        if self.mode == 2 { let _ = self.get_http_response_header("x-d"); let _ = self.get_http_response_header(":status"); }
        Action::Continue
    }
}
