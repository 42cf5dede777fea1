//! Relaying bytes between a client and a backend.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bytes read at a time, each way, per connection.
const CHUNK: usize = 8 * 1024;

/// Copies bytes both ways; a side that ends its sending is passed on as
/// such (half-close), and the connection ends when both have, on an error,
/// or when nothing has moved either way for `idle`. Returns the bytes that
/// went from `a` to `b` and from `b` to `a`.
pub(super) async fn relay(mut a: TcpStream, mut b: TcpStream, idle: Duration) -> (u64, u64) {
    let (mut a_read, mut a_write) = a.split();
    let (mut b_read, mut b_write) = b.split();
    let (mut from_a, mut from_b) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let (mut a_open, mut b_open) = (true, true);
    let (mut a_to_b, mut b_to_a) = (0u64, 0u64);
    while a_open || b_open {
        tokio::select! {
            read = a_read.read(&mut from_a), if a_open => match read {
                Ok(0) => {
                    a_open = false;
                    let _ = b_write.shutdown().await;
                }
                Ok(n) => {
                    if b_write.write_all(&from_a[..n]).await.is_err() {
                        break;
                    }
                    a_to_b += n as u64;
                }
                Err(_) => break,
            },
            read = b_read.read(&mut from_b), if b_open => match read {
                Ok(0) => {
                    b_open = false;
                    let _ = a_write.shutdown().await;
                }
                Ok(n) => {
                    if a_write.write_all(&from_b[..n]).await.is_err() {
                        break;
                    }
                    b_to_a += n as u64;
                }
                Err(_) => break,
            },
            () = tokio::time::sleep(idle) => break,
        }
    }
    (a_to_b, b_to_a)
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    #[tokio::test]
    async fn a_relay_passes_bytes_and_half_closes_then_ends_when_idle() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (client, served) = tokio::join!(TcpStream::connect(address), listener.accept());
        let (mut client, (inner, _)) = (client.unwrap(), served.unwrap());
        let backend_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend_address = backend_listener.local_addr().unwrap();
        let (outer, accepted) = tokio::join!(TcpStream::connect(backend_address), backend_listener.accept());
        let (outer, (mut backend, _)) = (outer.unwrap(), accepted.unwrap());
        let relaying = tokio::spawn(relay(inner, outer, Duration::from_millis(300)));

        client.write_all(b"hello").await.unwrap();
        let mut got = [0u8; 5];
        backend.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        backend.write_all(b"back").await.unwrap();
        let mut back = [0u8; 4];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"back");
        client.shutdown().await.unwrap();
        let mut rest = Vec::new();
        let ended = tokio::time::timeout(Duration::from_secs(2), backend.read_to_end(&mut rest)).await;
        assert!(ended.is_ok(), "the client's end of sending reaches the backend");
        // Nothing moves any more: the relay ends by itself, and says what moved.
        let moved = tokio::time::timeout(Duration::from_secs(2), relaying)
            .await
            .expect("an idle relay ends")
            .unwrap();
        assert_eq!(moved, (5, 4));
    }
}
