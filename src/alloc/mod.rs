//! The static build's allocator cache and memcpy.

pub mod memcopy;
pub mod thread_cache;
