extern "C" {
    fn answer() -> u32;
}

// One wasm instance runs one thread, so the static is not shared across threads.
static mut PLACE: u32 = 23;

#[no_mangle]
pub extern "C" fn bar() -> *const u32 {
    unsafe {
        PLACE = answer();
        // A pointer into the exported memory, which `two` reads.
        core::ptr::addr_of!(PLACE)
    }
}
