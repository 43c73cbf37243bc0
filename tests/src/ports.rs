//! Free ports on 127.0.0.1.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;

/// Ports already handed out by this process, so two parallel tests never get the same one
/// even if the kernel offers it twice.
static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A port nothing listens on right now: bind :0, note the port, close it.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("bound socket has an address")
            .port();
        drop(listener);
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if given.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 after 100 tries");
}

/// A port where connections are refused: an api_base pointing here stands for a provider
/// that is down.
pub fn closed_port() -> u16 {
    free_port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_bindable() {
        let ports: HashSet<u16> = (0..20).map(|_| free_port()).collect();
        assert_eq!(ports.len(), 20);
        let port = free_port();
        TcpListener::bind(("127.0.0.1", port)).expect("a free port can be bound");
    }

    #[test]
    fn closed_port_refuses() {
        let port = closed_port();
        let err = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    }
}
