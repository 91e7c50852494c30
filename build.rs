// The library is loaded into nginx workers whose runtime threads outlive any Lua
// reference to it: never let the dynamic loader unmap it (DESIGN.md).
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
}
