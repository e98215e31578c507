//! Reading and writing header fields at fixed offsets: big-endian integers, addresses and
//! protocol numbers, each converted in one place for every header view.

use core::net::{Ipv4Addr, Ipv6Addr};
use core::ops::Range;

use crate::types::MacAddr;

/// Reads `N` bytes at `range` of a buffer as an array. Panics only if the range is out of
/// bounds, which the callers' `check_len` rules out.
#[inline(always)]
pub(crate) fn array<const N: usize>(data: &[u8], range: Range<usize>) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&data[range]);
    out
}

/// A value a header field holds, as the accessors that `packet_view!` writes read and store it:
/// integers big-endian, addresses as their octets, protocol numbers through their raw type.
///
/// `At` locates the field the way each module's `mod field` does: a byte index for a
/// one-byte field, a range for a wider one. `read` and `write` panic only when the field is
/// outside `data`, which the view's `check_len` rules out.
pub(crate) trait FieldValue: Sized {
    /// How the field is located: `usize` or `Range<usize>`.
    type At;
    /// The value of the field at `at`.
    fn read(data: &[u8], at: Self::At) -> Self;
    /// Stores `self` into the field at `at`.
    fn write(self, data: &mut [u8], at: Self::At);
}

impl FieldValue for u8 {
    type At = usize;

    #[inline(always)]
    fn read(data: &[u8], at: usize) -> u8 {
        data[at]
    }

    #[inline(always)]
    fn write(self, data: &mut [u8], at: usize) {
        data[at] = self
    }
}

/// Types stored as the octets of their `[u8; N]` form: `from` builds one from the octets,
/// `octets` gives them back.
macro_rules! octets_field {
    ($($ty:ty: |$v:ident| $octets:expr, $from:expr;)*) => {
        $(
            impl FieldValue for $ty {
                type At = Range<usize>;

                #[inline(always)]
                fn read(data: &[u8], at: Range<usize>) -> $ty {
                    $from(array(data, at))
                }

                #[inline(always)]
                fn write(self, data: &mut [u8], at: Range<usize>) {
                    let $v = self;
                    data[at].copy_from_slice(&$octets)
                }
            }
        )*
    };
}

octets_field! {
    u16: |v| v.to_be_bytes(), u16::from_be_bytes;
    u32: |v| v.to_be_bytes(), u32::from_be_bytes;
    MacAddr: |v| v.0, MacAddr;
    Ipv4Addr: |v| v.octets(), Ipv4Addr::from;
    Ipv6Addr: |v| v.octets(), Ipv6Addr::from;
}
