//! `wire_enum!`: the one way ADA declares an enum that is stored in shared memory or a record.
//!
//! Shared memory holds integers, never Rust enums (a peer can write any bit pattern). This macro
//! declares a `#[repr(u32)]` enum with explicit values and the `TryFrom<u32>` decoder that rejects
//! unknown values by handing them back as the error.

/// Declares a `#[repr(u32)]` enum with explicit discriminants and `TryFrom<u32>` (unknown values
/// are returned as `Err(raw)`).
///
/// ```
/// ada_shm::wire_enum! {
///     /// A colour on the wire.
///     pub enum Colour {
///         /// Red.
///         Red = 1,
///         /// Green.
///         Green = 2,
///     }
/// }
/// assert_eq!(Colour::try_from(2), Ok(Colour::Green));
/// assert_eq!(Colour::try_from(9), Err(9));
/// ```
#[macro_export]
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant = $value ),+
        }

        impl ::core::convert::TryFrom<u32> for $name {
            type Error = u32;
            fn try_from(raw: u32) -> ::core::result::Result<Self, u32> {
                match raw {
                    $( $value => ::core::result::Result::Ok($name::$variant), )+
                    other => ::core::result::Result::Err(other),
                }
            }
        }
    };
}
