//! The macros that write the parts every header module shares: the `Packet<T>` wrapper and
//! its fixed-offset field accessors (`packet_view!`), flag bits within a field
//! (`flag_getters!`, `flag_setters!`), protocol-number enums (`enum_with_unknown!`) and,
//! for tests, the checks every header module runs on its hand-written bytes
//! (`header_tests!`). What is particular to a header (a `check_len` that reads more than one
//! length, derived fields, `Repr`) stays written out in its own module.

/// Declares a header's zero-copy view `$name<T>` over a buffer, with `new_unchecked`,
/// `new_checked` (which runs `check_len`, the one rule each header states) and `into_inner`.
///
/// With `, at least LEN bytes` it also writes `check_len` for a header of fixed length `LEN`
/// (`Err(Truncated)` below it). With `, at least LEN bytes and as many as len says`, for a
/// header whose own field says how long it is, `check_len` also holds the buffer to the
/// length `self.len()` returns (see [`check_declared_len`](super::check_declared_len)).
/// Without either, the module writes its own `check_len`. With `, payload at field::PAYLOAD`
/// it writes `payload` and `payload_mut`: everything from that fixed offset on.
///
/// The block that follows lists the header's fields at fixed offsets, one entry each:
/// `pub fn name, set_name: Type = field::AT;` writes the getter `name` (for every view) and
/// the setter `set_name` (for a view over a mutable buffer) of the field at `field::AT`, read
/// and written as `Type` (see [`FieldValue`](super::bytes::FieldValue) for how each type is
/// stored). A read-only field leaves out `, set_name`.
macro_rules! packet_view {
    (@check_len $len:ident) => {
        #[doc = concat!("`Err(Truncated)` when the buffer is shorter than [`",
            stringify!($len), "`]. The header has no length field, so no setter can \
            undo this check.")]
        pub fn check_len(&self) -> $crate::wire::Result<()> {
            if self.buffer.as_ref().len() < $len {
                Err($crate::wire::Error::Truncated)
            } else {
                Ok(())
            }
        }
    };
    (@check_len $len:ident $declared:ident) => {
        #[doc = concat!("`Err(Truncated)` when the buffer is shorter than [`",
            stringify!($len), "`] or than [`", stringify!($declared), "`](Self::",
            stringify!($declared), ") says; `Err(Malformed)` when that is below [`",
            stringify!($len), "`]. Setting the field it reads can undo this check.")]
        pub fn check_len(&self) -> $crate::wire::Result<()> {
            let buffer_len = self.buffer.as_ref().len();
            $crate::wire::check_declared_len(buffer_len, $len, || usize::from(self.$declared()))
        }
    };
    (
        $(#[$doc:meta])* $name:ident
        $(, at least $len:ident bytes $(and as many as $declared:ident says)?)?
        $(, payload at $payload:path)?
        {
            $(
                $(#[$doc_field:meta])*
                $vis:vis fn $get:ident $(, $set:ident)?: $ty:ty = $at:expr;
            )*
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// Wraps a buffer without checking its length.
            pub const fn new_unchecked(buffer: T) -> $name<T> {
                $name { buffer }
            }

            #[doc = concat!("Wraps a buffer, then [`", stringify!($name), "::check_len`].")]
            pub fn new_checked(buffer: T) -> $crate::wire::Result<$name<T>> {
                let view = Self::new_unchecked(buffer);
                view.check_len()?;
                Ok(view)
            }

            /// The wrapped buffer.
            pub fn into_inner(self) -> T {
                self.buffer
            }

            $($crate::wire::packet_view!(@check_len $len $($declared)?);)?
        }

        $(
            impl<'a, T: AsRef<[u8]> + ?Sized> $name<&'a T> {
                /// Everything after the header.
                #[inline]
                pub fn payload(&self) -> &'a [u8] {
                    &self.buffer.as_ref()[$payload]
                }
            }

            impl<T: AsRef<[u8]> + AsMut<[u8]>> $name<T> {
                /// Everything after the header, mutable.
                #[inline]
                pub fn payload_mut(&mut self) -> &mut [u8] {
                    &mut self.buffer.as_mut()[$payload]
                }
            }
        )?

        impl<T: AsRef<[u8]>> $name<T> {
            $(
                $(#[$doc_field])*
                #[inline]
                $vis fn $get(&self) -> $ty {
                    <$ty as $crate::wire::bytes::FieldValue>::read(self.buffer.as_ref(), $at)
                }
            )*
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $name<T> {
            $($(
                #[doc = concat!("Sets [`", stringify!($get), "`](Self::", stringify!($get), ").")]
                #[inline]
                $vis fn $set(&mut self, value: $ty) {
                    $crate::wire::bytes::FieldValue::write(value, self.buffer.as_mut(), $at)
                }
            )?)*
        }
    };
}
pub(crate) use packet_view;

/// Flag getters for an `impl<T: AsRef<[u8]>>` block of a view, one entry each:
/// `pub fn name = word & MASK;` is true when any bit of `MASK` is set in `self.word()`.
macro_rules! flag_getters {
    ($( $(#[$doc:meta])* $vis:vis fn $name:ident = $word:ident & $mask:expr; )*) => {
        $(
            $(#[$doc])*
            #[inline]
            $vis fn $name(&self) -> bool {
                self.$word() & $mask != 0
            }
        )*
    };
}
pub(crate) use flag_getters;

/// Flag setters for an `impl<T: AsRef<[u8]> + AsMut<[u8]>>` block of a view, one entry
/// each: `pub fn set_name = word & MASK, via set_word;` sets the bits of `MASK` in
/// `self.word()` when given `true`, clears them when given `false`, keeps the other bits, and
/// stores the result with `self.set_word()`.
macro_rules! flag_setters {
    ($( $(#[$doc:meta])* $vis:vis fn $name:ident = $word:ident & $mask:expr, via $set:ident; )*) => {
        $(
            $(#[$doc])*
            #[inline]
            $vis fn $name(&mut self, value: bool) {
                let v = self.$word() & !$mask;
                self.$set(if value { v | $mask } else { v })
            }
        )*
    };
}
pub(crate) use flag_setters;

/// Declares an enum with known variants and an `Unknown(raw)` arm, plus conversions to and
/// from the raw type. Unknown values are data, not errors.
///
/// Each entry reads `Variant = CONST = raw`: the variant, an associated `const` of the raw
/// type holding its value, and the value. The constants are for code that matches on raw
/// numbers as read from a frame (the key extractor, the match parser), so that a number is
/// written once, here, and a `match` can still use it as a pattern. The enum is a header
/// field value stored as its raw type.
///
/// With `, displayed as "FORMAT"` after the raw type it also implements `Display`: the raw
/// value through `FORMAT` (`"{:#06x}"`, say).
macro_rules! enum_with_unknown {
    (
        $(#[$enum_attr:meta])*
        pub enum $name:ident($ty:ty) $(, displayed as $fmt:literal)? {
            $( $(#[$variant_attr:meta])* $variant:ident = $raw:ident = $value:literal ),+ $(,)?
        }
    ) => {
        $(#[$enum_attr])*
        #[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone, Copy, Hash)]
        pub enum $name {
            $( $(#[$variant_attr])* $variant ),*,
            /// A value without a name here.
            Unknown($ty),
        }

        impl $name {
            $(
                #[doc = concat!("The raw value of [`", stringify!($name), "::",
                    stringify!($variant), "`]: `", stringify!($value), "`.")]
                pub const $raw: $ty = $value;
            )*
        }

        impl ::core::convert::From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( $name::$raw => $name::$variant ),*,
                    other => $name::Unknown(other),
                }
            }
        }

        impl ::core::convert::From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $name::$raw ),*,
                    $name::Unknown(other) => other,
                }
            }
        }

        impl $crate::wire::bytes::FieldValue for $name {
            type At = <$ty as $crate::wire::bytes::FieldValue>::At;

            #[inline(always)]
            fn read(data: &[u8], at: Self::At) -> $name {
                $name::from(<$ty as $crate::wire::bytes::FieldValue>::read(data, at))
            }

            #[inline(always)]
            fn write(self, data: &mut [u8], at: Self::At) {
                <$ty>::from(self).write(data, at)
            }
        }

        $(
            impl ::core::fmt::Display for $name {
                fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    write!(f, $fmt, <$ty>::from(*self))
                }
            }
        )?
    };
}
pub(crate) use enum_with_unknown;

/// Writes the tests every header module runs on its hand-written bytes, inside its
/// `mod test` (where `Packet`, `HEADER_LEN` and, with a `Repr`, `Repr` are in scope):
///
/// - `test_truncated_header`: every prefix of `BYTES` shorter than `HEADER_LEN` fails
///   `Packet::new_checked` with `Err(Truncated)`;
///
/// and with `, repr: EXPR` (the `Repr` that `BYTES` holds):
///
/// - `test_parse`: `Repr::parse` of `BYTES` gives it;
/// - `test_emit`: its `header_len()` is `HEADER_LEN`, and emitting it over a copy of `BYTES`
///   whose header is overwritten with `0xa5` (so that a field left unwritten shows up; the
///   payload stays in place) gives `BYTES` back.
#[cfg(test)]
macro_rules! header_tests {
    ($bytes:ident $(, repr: $repr:expr)? $(,)?) => {
        #[test]
        fn test_truncated_header() {
            for len in 0..HEADER_LEN {
                assert_eq!(
                    Packet::new_checked(&$bytes[..len]),
                    Err($crate::wire::Error::Truncated),
                    "{len} bytes"
                );
            }
        }

        $(
            #[test]
            fn test_parse() {
                assert_eq!(Repr::parse(&Packet::new_unchecked(&$bytes[..])), Ok($repr));
            }

            #[test]
            fn test_emit() {
                let mut bytes = $bytes;
                bytes[..HEADER_LEN].fill(0xa5);
                let r = $repr;
                assert_eq!(r.header_len(), HEADER_LEN);
                r.emit(&mut Packet::new_unchecked(&mut bytes[..]));
                assert_eq!(bytes, $bytes);
            }
        )?
    };
}
#[cfg(test)]
pub(crate) use header_tests;
