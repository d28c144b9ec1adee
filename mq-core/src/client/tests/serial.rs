//! A session on a serial line.

use super::*;

#[test]
fn serial_framing_round_trip() {
    let mut s: Session<[u8; 2048]> = Session::new(config(), Framing::Serial, [0; 2048], [0; 2048]);
    let now = Instant::from_millis(5);
    s.connect(now);
    s.handle_connected(now);
    let mut line = [0u8; 4096];
    let n = s.poll_transmit(now, &mut line).unwrap();
    let mut dec = SerialDecoder::new([0u8; 4096]);
    let (used, out) = dec.feed(&line[..n]);
    assert_eq!(used, n);
    assert!(matches!(out, Some(Ok(Frame::Hello(_)))));
    // The serial driver decodes the broker's frames itself.
    s.handle_frame(now, T::welcome(true, limits(512, 0)))
        .unwrap();
    assert_eq!(s.poll_event(), Some(Event::Connect));
    assert_eq!(
        s.poll_event(),
        Some(Event::Connected {
            session_present: true
        })
    );
    s.publish(now, "uart.x", &[0; 50], &PublishOptions::default())
        .unwrap();
    let n = s.poll_transmit(now, &mut line).unwrap();
    let (_, out) = dec.feed(&line[..n]);
    let Some(Ok(Frame::Publish(p))) = out else {
        panic!("expected a publish")
    };
    assert_eq!((p.topic, p.payload.len()), ("uart.x", 50));
}
