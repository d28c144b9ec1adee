use std::future::Future;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// Polls `f` once, without a task to wake.
fn poll_once<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(Waker::noop()))
}

fn write_now(client: &mut PipeStream, bytes: &[u8]) -> Poll<io::Result<usize>> {
    Pin::new(client).poll_write(&mut Context::from_waker(Waker::noop()), bytes)
}

#[tokio::test]
async fn the_server_reads_the_clients_writes_as_chunks() {
    let (mut client, mut server) = pipe(1024);
    client.write_all(b"hello").await.unwrap();
    client.write_all(b", world").await.unwrap();
    assert_eq!(server.read.read(100).await.unwrap(), &b"hello"[..]);
    // A chunk longer than the reader wants is cut, the rest read next.
    assert_eq!(server.read.read(3).await.unwrap(), &b", w"[..]);
    assert_eq!(server.read.read(100).await.unwrap(), &b"orld"[..]);
}

#[tokio::test]
async fn the_servers_chunks_reach_the_client_as_they_are() {
    let (mut client, mut server) = pipe(1024);
    let chunk = Bytes::from(vec![7u8; 300]);
    server.write.send(chunk.clone()).await.unwrap();
    server.write.send(Bytes::from_static(b"end")).await.unwrap();
    {
        // Not copied into the pipe: the client reads the chunk itself.
        let s = client.down.0.lock();
        assert_eq!(s.chunks[0].as_ptr(), chunk.as_ptr());
    }
    // Reads cross the chunks' boundaries.
    let mut got = vec![0u8; 200];
    client.read_exact(&mut got).await.unwrap();
    assert_eq!(got, [7u8; 200]);
    let mut got = vec![0u8; 103];
    client.read_exact(&mut got).await.unwrap();
    assert_eq!(&got[100..], b"end");
    assert_eq!(&got[..100], [7u8; 100]);
}

#[tokio::test]
async fn a_full_pipe_holds_the_clients_writes() {
    let (mut client, mut server) = pipe(10);
    assert!(matches!(
        write_now(&mut client, &[1; 25]),
        Poll::Ready(Ok(10))
    ));
    assert!(write_now(&mut client, &[2; 5]).is_pending());
    assert_eq!(server.read.read(4).await.unwrap(), &[1u8; 4][..]);
    assert!(matches!(
        write_now(&mut client, &[2; 5]),
        Poll::Ready(Ok(4))
    ));
    assert!(write_now(&mut client, &[3; 5]).is_pending());
}

#[tokio::test]
async fn a_full_pipe_holds_the_servers_writes() {
    let (mut client, mut server) = pipe(10);
    // A chunk goes in whole while there is room.
    server.write.send(Bytes::from(vec![1u8; 25])).await.unwrap();
    {
        let send = server.write.send(Bytes::from_static(b"x"));
        let mut send = std::pin::pin!(send);
        assert!(poll_once(send.as_mut()).is_pending());
        let mut got = [0u8; 15];
        client.read_exact(&mut got).await.unwrap();
        assert!(poll_once(send.as_mut()).is_pending());
        client.read_exact(&mut got[..1]).await.unwrap();
        assert!(matches!(poll_once(send.as_mut()), Poll::Ready(Ok(()))));
    }
    let mut got = [0u8; 10];
    client.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"\x01\x01\x01\x01\x01\x01\x01\x01\x01x");
}

#[tokio::test]
async fn a_closed_end_is_the_end_of_the_others_input() {
    let (mut client, mut server) = pipe(1024);
    client.write_all(b"last").await.unwrap();
    client.shutdown().await.unwrap();
    assert_eq!(server.read.read(100).await.unwrap(), &b"last"[..]);
    assert_eq!(server.read.read(100).await, None);
    server.write.send(Bytes::from_static(b"bye")).await.unwrap();
    server.write.close();
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"bye");
}

#[tokio::test]
async fn a_client_dropped_mid_write_ends_the_servers_input_and_output() {
    let (mut client, server) = pipe(1024);
    client.write_all(b"half a fr").await.unwrap();
    drop(client);
    let PipeEnd {
        mut read,
        mut write,
    } = server;
    assert_eq!(read.read(100).await.unwrap(), &b"half a fr"[..]);
    assert_eq!(read.read(100).await, None);
    let err = write.send(Bytes::from_static(b"x")).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
}

#[tokio::test]
async fn the_clients_writes_fail_once_both_server_halves_are_gone() {
    let (mut client, server) = pipe(1024);
    let PipeEnd { read, mut write } = server;
    // The broker stopped reading a connection it closes; its last output
    // is still on the way, and the client may still write meanwhile.
    drop(read);
    client.write_all(b"still").await.unwrap();
    write.send(Bytes::from_static(b"bye")).await.unwrap();
    drop(write);
    let err = client.write_all(b"x").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"bye");
}

#[tokio::test]
async fn a_server_gone_fails_the_clients_writes_and_ends_its_reads() {
    let (mut client, server) = pipe(1024);
    drop(server);
    let err = client.write_all(b"x").await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    let mut got = Vec::new();
    assert_eq!(client.read_to_end(&mut got).await.unwrap(), 0);
}

/// A waker that notes it was woken.
#[derive(Default)]
struct Flag(std::sync::atomic::AtomicBool);

impl std::task::Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Flag {
    fn waker() -> (Arc<Flag>, Waker) {
        let flag = Arc::new(Flag::default());
        (flag.clone(), Waker::from(flag))
    }

    fn woken(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The client's read waits, then `event` happens: the read's task is woken.
fn client_read_woken_by(event: impl FnOnce(&mut Option<PipeEnd>)) {
    let (mut client, server) = pipe(16);
    let mut server = Some(server);
    let (flag, waker) = Flag::waker();
    let mut buf = [0u8; 4];
    let mut buf = ReadBuf::new(&mut buf);
    let read = Pin::new(&mut client).poll_read(&mut Context::from_waker(&waker), &mut buf);
    assert!(read.is_pending());
    event(&mut server);
    assert!(flag.woken());
}

/// The client's write waits at a full pipe, then `event` happens: the
/// write's task is woken.
fn client_write_woken_by(event: impl FnOnce(&mut Option<PipeEnd>)) {
    let (mut client, server) = pipe(4);
    let mut server = Some(server);
    assert!(matches!(
        write_now(&mut client, &[1; 4]),
        Poll::Ready(Ok(4))
    ));
    let (flag, waker) = Flag::waker();
    let write = Pin::new(&mut client).poll_write(&mut Context::from_waker(&waker), b"x");
    assert!(write.is_pending());
    event(&mut server);
    assert!(flag.woken());
}

/// The server's read waits, then `event` happens: the read's task is woken.
fn server_read_woken_by(event: impl FnOnce(&mut Option<PipeStream>)) {
    let (client, mut server) = pipe(16);
    let mut client = Some(client);
    let (flag, waker) = Flag::waker();
    let read = server.read.read(100);
    let mut read = std::pin::pin!(read);
    assert!(
        read.as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    event(&mut client);
    assert!(flag.woken());
}

#[test]
fn a_waiting_read_or_write_is_woken_by_what_lets_it_go_on() {
    // The client's read: a chunk sent, the output closed, the end dropped.
    client_read_woken_by(|end| {
        let end = end.as_mut().unwrap();
        let chunk = Bytes::from_static(b"hi");
        assert!(poll_once(std::pin::pin!(end.write.send(chunk))).is_ready());
    });
    client_read_woken_by(|end| end.as_mut().unwrap().write.close());
    client_read_woken_by(|end| drop(end.take()));
    // The client's write: room made by a read, the server's end gone.
    client_write_woken_by(|end| {
        let end = end.as_mut().unwrap();
        assert!(poll_once(std::pin::pin!(end.read.read(2))).is_ready());
    });
    client_write_woken_by(|end| drop(end.take()));
    // The server's read: a write, the client's shutdown, the client dropped.
    server_read_woken_by(|client| {
        assert!(write_now(client.as_mut().unwrap(), b"ping").is_ready());
    });
    server_read_woken_by(|client| {
        let client = Pin::new(client.as_mut().unwrap());
        let shutdown = client.poll_shutdown(&mut Context::from_waker(Waker::noop()));
        assert!(shutdown.is_ready());
    });
    server_read_woken_by(|client| drop(client.take()));
}

#[tokio::test]
async fn the_servers_full_pipe_wakes_its_writer_when_the_client_reads() {
    let (mut client, mut server) = pipe(4);
    server.write.send(Bytes::from(vec![1u8; 4])).await.unwrap();
    let (flag, waker) = Flag::waker();
    let send = server.write.send(Bytes::from_static(b"x"));
    let mut send = std::pin::pin!(send);
    assert!(
        send.as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    let mut got = [0u8; 1];
    client.read_exact(&mut got).await.unwrap();
    assert!(flag.woken());
}
