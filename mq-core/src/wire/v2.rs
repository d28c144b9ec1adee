//! Version 2 of the protocol, as far as a broker still writes it: its
//! `Welcome`.
//!
//! Version 3 added one field, [`Welcome::epoch`], last in the frame: a node
//! link needs it, an ordinary client gets 0. A version-2 client (firmware in
//! the field, C and Python applications linked against an old libmq) decodes
//! `Welcome` without it and refuses the trailing byte, so a broker writes it
//! [`WelcomeV2`]: the same tag and fields, no epoch. Every other frame is
//! the same in both versions.

use super::codec::wire_struct;
use super::{Limits, Welcome};

/// Version 2's `Welcome`: version 3's without [`Welcome::epoch`], written
/// under the same tag (`Frame::Welcome`'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WelcomeV2 {
    version: u16,
    session_present: bool,
    limits: Limits,
}

wire_struct!(WelcomeV2 {
    version,
    session_present,
    limits
});

impl From<Welcome> for WelcomeV2 {
    /// The version-2 shape of `w`: its epoch is dropped (0 to any client a
    /// broker writes this to).
    fn from(w: Welcome) -> Self {
        WelcomeV2 {
            version: w.version,
            session_present: w.session_present,
            limits: w.limits,
        }
    }
}

/// Version 2's frames up to `Welcome`, as its serde types declared them:
/// what a version-2 client decodes (postcard is the format's definition).
#[cfg(test)]
pub(crate) mod serde_v2 {
    use serde::{Deserialize, Serialize};

    use crate::wire::{Hello, Limits};

    /// `Frame` of version 2, its first two variants (their tags 0 and 1
    /// are this enum's variant indexes).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub(crate) enum Frame<'a> {
        #[serde(borrow)]
        Hello(Hello<'a>),
        Welcome(Welcome),
    }

    /// `Welcome` of version 2.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub(crate) struct Welcome {
        pub(crate) version: u16,
        pub(crate) session_present: bool,
        pub(crate) limits: Limits,
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use postcard::ser_flavors::{Cobs, Slice, crc::CrcModifier};
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    use super::serde_v2;
    use super::*;
    use crate::framing::serial::CRC32C;
    use crate::framing::{Framing, stream};
    use crate::wire::Frame;

    fn welcome() -> impl Strategy<Value = Welcome> {
        (any::<u16>(), any::<bool>(), any::<[u32; 3]>(), any::<u64>()).prop_map(
            |(version, session_present, [max_frame, credit, keepalive_ms], epoch)| Welcome {
                version,
                session_present,
                limits: Limits {
                    max_frame,
                    credit,
                    keepalive_ms,
                },
                epoch,
            },
        )
    }

    /// `w` in version 2's serde types.
    fn old(w: &Welcome) -> serde_v2::Frame<'static> {
        serde_v2::Frame::Welcome(serde_v2::Welcome {
            version: w.version,
            session_present: w.session_present,
            limits: w.limits,
        })
    }

    /// What postcard encodes for `w` in version 2's serde types, tag first.
    fn postcard_v2(w: &Welcome) -> Vec<u8> {
        postcard::to_allocvec(&old(w)).unwrap()
    }

    /// The same with postcard's COBS flavor and CRC modifier (serial lines).
    fn postcard_v2_serial(w: &Welcome) -> Vec<u8> {
        let mut buf = vec![0u8; 64];
        let flavor = CrcModifier::new(
            Cobs::try_new(Slice::new(&mut buf)).unwrap(),
            CRC32C.digest(),
        );
        postcard::serialize_with_flavor::<_, _, &mut [u8]>(&old(w), flavor)
            .unwrap()
            .to_vec()
    }

    /// `w` as a broker writes it to a version-2 client, in `framing`.
    fn framed_v2(w: Welcome, framing: Framing) -> Vec<u8> {
        let tag = Frame::Welcome(w).tag();
        let mut buf = vec![0u8; 64];
        let n = framing
            .encode_fields(tag, &WelcomeV2::from(w), u32::MAX, &mut buf)
            .unwrap();
        buf.truncate(n);
        buf
    }

    proptest! {
        /// Byte for byte what version 2 wrote, in both framings; a
        /// version-2 decoder takes all of it, and version 3's refuses it.
        #[test]
        fn a_version_2_welcome_is_what_version_2_wrote(w in welcome()) {
            let body = postcard_v2(&w);
            let (decoded, rest) =
                postcard::take_from_bytes::<serde_v2::Frame<'_>>(&body).unwrap();
            prop_assert!(rest.is_empty());
            let serde_v2::Frame::Welcome(old) = decoded else {
                panic!("{decoded:?}");
            };
            prop_assert_eq!(
                (old.version, old.session_present, old.limits),
                (w.version, w.session_present, w.limits)
            );
            prop_assert!(Frame::decode(&body).is_err());

            let mut want = vec![0u8; stream::prefix_len(body.len())];
            stream::write_prefix(body.len() as u32, &mut want);
            want.extend_from_slice(&body);
            prop_assert_eq!(framed_v2(w, Framing::Stream), want);

            prop_assert_eq!(framed_v2(w, Framing::Serial), postcard_v2_serial(&w));
        }
    }

    #[test]
    fn a_version_2_welcome_larger_than_the_peer_takes_is_refused() {
        let w = Welcome {
            version: 2,
            session_present: false,
            limits: Limits {
                max_frame: 1,
                credit: 1,
                keepalive_ms: 0,
            },
            epoch: 0,
        };
        let tag = Frame::Welcome(w).tag();
        for framing in [Framing::Stream, Framing::Serial] {
            let mut buf = [0u8; 64];
            let got = framing.encode_fields(tag, &WelcomeV2::from(w), 3, &mut buf);
            assert!(got.is_err(), "{framing:?}");
            let got = framing.encode_fields(tag, &WelcomeV2::from(w), 64, &mut buf[..4]);
            assert!(got.is_err(), "{framing:?}");
        }
    }
}
