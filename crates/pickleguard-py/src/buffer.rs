//! Zero-copy access to any object that supports the buffer protocol (`bytes`, `memoryview`,
//! `mmap.mmap`, `bytearray`, NumPy arrays, ...).
//!
//! PyO3's `PyBuffer` needs the 3.11 limited API; this module is built for abi3-py39, so it
//! declares `PyObject_GetBuffer`/`PyBuffer_Release` and `Py_buffer` itself. Both functions
//! and the struct's layout have been part of CPython's stable ABI in practice since 3.0 (and
//! officially since 3.11).

use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use std::os::raw::{c_char, c_int, c_void};

#[repr(C)]
struct RawBuffer {
    buf: *mut c_void,
    obj: *mut ffi::PyObject,
    len: ffi::Py_ssize_t,
    itemsize: ffi::Py_ssize_t,
    readonly: c_int,
    ndim: c_int,
    format: *mut c_char,
    shape: *mut ffi::Py_ssize_t,
    strides: *mut ffi::Py_ssize_t,
    suboffsets: *mut ffi::Py_ssize_t,
    internal: *mut c_void,
}

extern "C" {
    fn PyObject_GetBuffer(obj: *mut ffi::PyObject, view: *mut RawBuffer, flags: c_int) -> c_int;
    fn PyBuffer_Release(view: *mut RawBuffer);
}

/// `PyBUF_SIMPLE`: contiguous bytes, read-only access is enough.
const PYBUF_SIMPLE: c_int = 0;

/// A held buffer export. Released (with the GIL held) when dropped.
pub struct Bytes<'py> {
    raw: Box<RawBuffer>,
    _py: Python<'py>,
}

impl<'py> Bytes<'py> {
    pub fn get(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        let mut raw = Box::new(RawBuffer {
            buf: std::ptr::null_mut(),
            obj: std::ptr::null_mut(),
            len: 0,
            itemsize: 0,
            readonly: 0,
            ndim: 0,
            format: std::ptr::null_mut(),
            shape: std::ptr::null_mut(),
            strides: std::ptr::null_mut(),
            suboffsets: std::ptr::null_mut(),
            internal: std::ptr::null_mut(),
        });
        // SAFETY: `obj` is a live object (we hold a reference and the GIL); `raw` is a
        // properly sized, writable Py_buffer.
        let rc = unsafe { PyObject_GetBuffer(obj.as_ptr(), &mut *raw, PYBUF_SIMPLE) };
        if rc != 0 {
            return Err(PyErr::take(obj.py()).unwrap_or_else(|| {
                PyBufferError::new_err("expected a bytes-like object (buffer protocol)")
            }));
        }
        Ok(Bytes { raw, _py: obj.py() })
    }

    pub fn readonly(&self) -> bool {
        self.raw.readonly != 0
    }

    /// The bytes. Valid while `self` lives: the export keeps the exporter from resizing or
    /// freeing the memory (an `mmap` cannot be closed, a `bytearray` cannot be resized).
    pub fn as_slice(&self) -> &[u8] {
        if self.raw.len <= 0 || self.raw.buf.is_null() {
            return &[];
        }
        // SAFETY: PyBUF_SIMPLE guarantees `len` contiguous bytes at `buf` for the lifetime of
        // the export.
        unsafe { std::slice::from_raw_parts(self.raw.buf as *const u8, self.raw.len as usize) }
    }

    /// Run `f` over the bytes with the GIL released. Read-only exports are used in place; a
    /// writable one (`bytearray`, a writable memoryview or NumPy array) is copied first, since
    /// other threads could change it while the GIL is released.
    pub fn with_gil_released<R, F>(&self, f: F) -> R
    where
        R: Send,
        F: FnOnce(&[u8]) -> R + Send,
    {
        let py = self._py;
        if self.readonly() {
            let view = self.as_slice();
            py.allow_threads(move || f(view))
        } else {
            let copy = self.as_slice().to_vec();
            py.allow_threads(move || f(&copy))
        }
    }
}

impl Drop for Bytes<'_> {
    fn drop(&mut self) {
        // SAFETY: the export was obtained by PyObject_GetBuffer and is released once; the
        // GIL is held (`Bytes` carries a `Python<'py>` token and is not Send).
        unsafe { PyBuffer_Release(&mut *self.raw) }
    }
}
