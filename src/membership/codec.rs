//! foca's messages on the wire: postcard, with the destination as a short reference.
//!
//! A SWIM message names its sender and its destination in full; the destination only
//! serves to check "is this for me (this boot of me)?". So it travels as the address
//! and a 4-byte fingerprint of the whole identity (11 bytes instead of about 35), and
//! the receiver decodes it as itself when both match, as a stand-in at that address
//! otherwise (foca then drops the payload, or takes an `Announce`, which accepts any
//! identity at our address). The receiver's own identity is shared with the codec
//! (foca owns the codec and may renew the identity; `Membership` keeps it current).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut};
use foca::{Codec, Header, Incarnation, Member, Message, PostcardCodec};
use serde::{Deserialize, Serialize};

use super::identity::{Identity, WireIdentity};

/// The destination as it travels.
#[derive(Serialize, Deserialize)]
struct Dst {
    addr: SocketAddr,
    print: [u8; 4],
}

/// A fingerprint of the whole identity, from its wire bytes (fixed keys: the same everywhere).
fn print(id: &Identity) -> [u8; 4] {
    use std::hash::Hasher;
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0x6473_7421, 0x7072_696e);
    h.write(&postcard::to_allocvec(&WireIdentity::from(id.clone())).unwrap_or_default());
    let [a, b, c, d, ..] = h.finish().to_le_bytes();
    [a, b, c, d]
}

pub struct SwimCodec {
    me: Arc<Mutex<Identity>>,
}

impl SwimCodec {
    /// A codec decoding for `me`, and the handle to keep `me` current.
    pub fn new(me: Identity) -> (SwimCodec, Arc<Mutex<Identity>>) {
        let me = Arc::new(Mutex::new(me));
        (SwimCodec { me: me.clone() }, me)
    }

    fn me(&self) -> Identity {
        // Nothing panics while holding the lock; take the value even if it was poisoned.
        self.me.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Puts `bytes` into `buf`, or nothing when they do not fit (foca's rule for codecs).
fn put(bytes: &[u8], mut buf: impl BufMut) -> Result<(), postcard::Error> {
    if buf.remaining_mut() < bytes.len() {
        return Err(postcard::Error::SerializeBufferFull);
    }
    buf.put_slice(bytes);
    Ok(())
}

/// Takes one postcard value from the front of `buf`.
fn take<T: for<'de> Deserialize<'de>>(mut buf: impl Buf) -> Result<T, postcard::Error> {
    let remaining = buf.remaining();
    let (value, rest) = postcard::take_from_bytes::<T>(buf.chunk())?;
    let used = remaining - rest.len();
    buf.advance(used);
    Ok(value)
}

impl Codec<Identity> for SwimCodec {
    type Error = postcard::Error;

    fn encode_header(&mut self, h: &Header<Identity>, buf: impl BufMut) -> Result<(), Self::Error> {
        let dst = Dst {
            addr: h.dst.addr,
            print: print(&h.dst),
        };
        let bytes = postcard::to_allocvec(&(&h.src, h.src_incarnation, dst, &h.message))?;
        put(&bytes, buf)
    }

    fn decode_header(&mut self, buf: impl Buf) -> Result<Header<Identity>, Self::Error> {
        type Wire = (Identity, Incarnation, Dst, Message<Identity>);
        let (src, src_incarnation, dst, message) = take::<Wire>(buf)?;
        let me = self.me();
        let dst = if dst.addr == me.addr && dst.print == print(&me) {
            me
        } else {
            Identity::placeholder(dst.addr)
        };
        Ok(Header {
            src,
            src_incarnation,
            dst,
            message,
        })
    }

    fn encode_member(&mut self, m: &Member<Identity>, buf: impl BufMut) -> Result<(), Self::Error> {
        PostcardCodec.encode_member(m, buf)
    }

    fn decode_member(&mut self, buf: impl Buf) -> Result<Member<Identity>, Self::Error> {
        PostcardCodec.decode_member(buf)
    }
}
