//! The calling convention of the C++ shims in `csrc/` (`csrc/shim_error.h`): a function
//! takes an error buffer, returns 0 on success or -1 with the first line of libtorch's message
//! in the buffer. Each caller maps the message into its own error type.

use std::os::raw::c_char;

/// Calls `f` with a fresh error buffer; `Err` holds the message of a non-zero return.
pub(crate) fn call(f: impl FnOnce(*mut c_char, i64) -> i32) -> Result<(), String> {
    let mut err = vec![0u8; 2048];
    if f(err.as_mut_ptr().cast(), err.len() as i64) == 0 {
        return Ok(());
    }
    let end = err.iter().position(|&b| b == 0).unwrap_or(err.len());
    let message = String::from_utf8_lossy(&err[..end]);
    Err(message
        .lines()
        .next()
        .unwrap_or("unknown error")
        .to_string())
}
