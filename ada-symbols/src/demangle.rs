//! Demangling of symbol names: Rust (legacy and v0) with `rustc-demangle`, C++ (Itanium ABI)
//! with `cpp_demangle`, with recursion limits, since names come from files that are not
//! trusted.

use std::borrow::Cow;

/// How deep `cpp_demangle` may recurse while parsing or printing one name.
const CPP_RECURSION_LIMIT: u32 = 256;

/// Names longer than this are left as they are (a demangler's time grows with the input).
const MAX_MANGLED_LEN: usize = 4096;

/// `name` demangled: a Rust name without its hash suffix, a C++ name in source form; any
/// other name (C, or one that does not demangle) as it is.
pub fn demangle(name: &str) -> Cow<'_, str> {
    if name.len() > MAX_MANGLED_LEN {
        return Cow::Borrowed(name);
    }
    if let Ok(rust) = rustc_demangle::try_demangle(name) {
        return Cow::Owned(format!("{rust:#}"));
    }
    if name.starts_with("_Z") {
        let parse = cpp_demangle::ParseOptions::default().recursion_limit(CPP_RECURSION_LIMIT);
        let print = cpp_demangle::DemangleOptions::new().recursion_limit(CPP_RECURSION_LIMIT);
        if let Ok(symbol) = cpp_demangle::Symbol::new_with_options(name.as_bytes(), &parse)
            && let Ok(text) = symbol.demangle_with_options(&print)
        {
            return Cow::Owned(text);
        }
    }
    Cow::Borrowed(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_cpp_and_plain_names() {
        assert_eq!(
            demangle("_ZN4core3fmt5write17h0123456789abcdefE"),
            "core::fmt::write"
        );
        assert_eq!(demangle("_ZN3foo3barEv"), "foo::bar()");
        assert_eq!(demangle("_Z3addii"), "add(int, int)");
        assert_eq!(demangle("main"), "main");
        // Not valid mangling: kept as is, no panic.
        assert_eq!(demangle("_Z"), "_Z");
        assert_eq!(demangle("_ZZZZZZ"), "_ZZZZZZ");
        let deep = format!("_Z{}", "P".repeat(3000));
        let _ = demangle(&deep);
        let long = format!("_Z{}", "a".repeat(MAX_MANGLED_LEN));
        assert_eq!(demangle(&long), long);
    }
}
