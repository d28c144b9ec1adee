//! A server picks a new seed at every start, so a memory store (empty at
//! every start) gets a new epoch each time, which its node links are told
//! (see `mq_core::wire::mesh`): peers do not take the messages of the
//! restarted node for those of its old self.

use mq_core::framing::stream::{Decoded, StreamDecoder, encode_frame};
use mq_core::wire::{Frame, Hello, Limits, PROTOCOL_VERSION, SessionMode};
use mq_server::server::{self, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The epoch a node link to a new in-process server (memory store) is told.
async fn epoch_of_a_new_server() -> u64 {
    let srv = server::spawn(ServerOptions::default()).await.unwrap();
    let mut tcp = TcpStream::connect(srv.addrs().listen).await.unwrap();
    let hello = Frame::Hello(Hello {
        version: PROTOCOL_VERSION,
        client_id: "$node.peer",
        session: SessionMode::Resume,
        token: None,
        limits: Limits {
            max_frame: 1 << 16,
            credit: 8,
            keepalive_ms: 0,
        },
    });
    let mut buf = vec![0u8; 1 << 16];
    let n = encode_frame(&hello, u32::MAX, &mut buf).unwrap();
    tcp.write_all(&buf[..n]).await.unwrap();
    let decoder = StreamDecoder::new(1 << 16);
    let mut got = Vec::new();
    let epoch = loop {
        let n = tcp.read(&mut buf).await.unwrap();
        assert_ne!(n, 0, "closed before Welcome");
        got.extend_from_slice(&buf[..n]);
        if let Decoded::Frame { frame, .. } = decoder.decode(&got).unwrap() {
            match frame {
                Frame::Welcome(w) => break w.epoch,
                other => panic!("{other:?} instead of Welcome"),
            }
        }
    };
    drop(tcp);
    srv.shutdown().await.unwrap();
    epoch
}

#[tokio::test]
async fn a_memory_store_gets_a_new_epoch_at_every_start() {
    let (first, second) = (epoch_of_a_new_server().await, epoch_of_a_new_server().await);
    assert_ne!(first, 0);
    assert_ne!(second, 0);
    assert_ne!(first, second);
}
