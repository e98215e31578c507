//! Our XDP redirect program, loaded with raw `bpf(2)` calls (no clang, no libbpf).
//!
//! The program is the 6-slot equivalent of
//!
//! ```c
//! SEC("xdp") int xsk_redirect(struct xdp_md *ctx) {
//!     return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
//! }
//! ```
//!
//! hand-encoded below: a frame on a queue with a socket in the XSKMAP goes to that socket,
//! anything else continues to the kernel stack. It is attached with `BPF_LINK_CREATE`, so
//! closing the link fd (dropping [`XdpLink`]) detaches it, even if the process dies.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
/// `enum bpf_attach_type`: BPF_XDP.
const BPF_XDP: u32 = 37;
const BPF_FUNC_REDIRECT_MAP: i32 = 51;
const BPF_PSEUDO_MAP_FD: u8 = 1;
const XDP_PASS: i32 = 2;
/// `struct xdp_md`: offset of `rx_queue_index`.
const XDP_MD_RX_QUEUE_INDEX: i16 = 16;

/// `XDP_FLAGS_SKB_MODE`: generic XDP, works on any device (copy only).
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`: the driver's native XDP hook.
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Insn {
    code: u8,
    /// dst register in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// The program, with the XSKMAP's fd in the 64-bit immediate load.
fn program(map_fd: RawFd) -> [Insn; 6] {
    [
        // r2 = *(u32 *)(r1 + 16): BPF_LDX | BPF_MEM | BPF_W
        insn(0x61, 2, 1, XDP_MD_RX_QUEUE_INDEX, 0),
        // r1 = map (ld_imm64 with src = BPF_PSEUDO_MAP_FD): BPF_LD | BPF_IMM | BPF_DW
        insn(0x18, 1, BPF_PSEUDO_MAP_FD, 0, map_fd),
        insn(0, 0, 0, 0, 0),
        // r3 = XDP_PASS: BPF_ALU64 | BPF_MOV | BPF_K
        insn(0xb7, 3, 0, 0, XDP_PASS),
        // call bpf_redirect_map: BPF_JMP | BPF_CALL
        insn(0x85, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),
        // return r0: BPF_JMP | BPF_EXIT
        insn(0x95, 0, 0, 0, 0),
    ]
}

/// `union bpf_attr` for BPF_MAP_CREATE (the prefix we use; the kernel zero-fills the rest).
#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

/// `union bpf_attr` for BPF_MAP_UPDATE_ELEM.
#[repr(C)]
#[derive(Default)]
struct MapUpdateAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// `union bpf_attr` for BPF_PROG_LOAD, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for BPF_LINK_CREATE.
#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}

/// Runs `bpf(cmd, attr)`, returning the new fd (or 0) or the errno.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialised `#[repr(C)]` prefix of `union bpf_attr` for
    // `cmd`, and its exact size is passed, so the kernel reads only those bytes (treating the
    // rest as zero). Pointers inside it (instructions, license, log, key, value) point to
    // buffers the callers keep alive across this call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn owned_fd(r: libc::c_long) -> OwnedFd {
    // SAFETY: `r` is a new fd just returned by bpf(2); nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(r as RawFd) }
}

fn name16(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    // At most 15 bytes plus the NUL; the kernel accepts [A-Za-z0-9_.].
    for (o, b) in out.iter_mut().zip(name.bytes().take(15)) {
        *o = b;
    }
    out
}

/// A `BPF_MAP_TYPE_XSKMAP`: queue index -> AF_XDP socket.
pub struct XskMap {
    fd: OwnedFd,
}

impl XskMap {
    /// Creates a map for queues `0..entries`.
    pub fn new(entries: u32) -> io::Result<XskMap> {
        let mut attr = MapCreateAttr {
            map_type: BPF_MAP_TYPE_XSKMAP,
            key_size: 4,
            value_size: 4,
            max_entries: entries,
            map_name: name16("vsw_xsks"),
            ..Default::default()
        };
        Ok(XskMap {
            fd: owned_fd(bpf(BPF_MAP_CREATE, &mut attr)?),
        })
    }

    /// Points queue `queue` at the socket `xsk`.
    pub fn set(&self, queue: u32, xsk: RawFd) -> io::Result<()> {
        let key = queue;
        let value = xsk as u32;
        let mut attr = MapUpdateAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: &key as *const u32 as u64,
            value: &value as *const u32 as u64,
            flags: 0, // BPF_ANY
            ..Default::default()
        };
        bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
    }
}

/// The loaded redirect program.
pub struct XdpProgram {
    fd: OwnedFd,
}

impl XdpProgram {
    /// Loads the program bound to `map`. On a verifier rejection the error carries the
    /// verifier's log.
    pub fn load(map: &XskMap) -> io::Result<XdpProgram> {
        let insns = program(map.fd.as_raw_fd());
        // Not GPL-only helpers: the license string only has to be a valid C string.
        let license = CString::new("Apache-2.0").expect("no NUL in a literal");
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_XDP,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            prog_name: name16("vsw_xsk_redir"),
            expected_attach_type: BPF_XDP,
            ..Default::default()
        };
        match bpf(BPF_PROG_LOAD, &mut attr) {
            Ok(fd) => Ok(XdpProgram { fd: owned_fd(fd) }),
            Err(e)
                if e.raw_os_error() == Some(libc::EACCES)
                    || e.raw_os_error() == Some(libc::EINVAL) =>
            {
                // Load again with a log buffer so the error says why.
                let mut log = vec![0u8; 4096];
                attr.log_level = 1;
                attr.log_size = log.len() as u32;
                attr.log_buf = log.as_mut_ptr() as u64;
                let again = bpf(BPF_PROG_LOAD, &mut attr);
                let text = String::from_utf8_lossy(&log);
                let text = text.trim_end_matches('\0').trim();
                match again {
                    Ok(fd) => Ok(XdpProgram { fd: owned_fd(fd) }),
                    Err(_) => Err(io::Error::new(
                        e.kind(),
                        format!("{e}; verifier log: {text}"),
                    )),
                }
            }
            Err(e) => Err(e),
        }
    }
}

/// The program attached to an interface; detached when dropped.
pub struct XdpLink {
    _fd: OwnedFd,
    /// `XDP_FLAGS_DRV_MODE` or `XDP_FLAGS_SKB_MODE`.
    pub mode: u32,
}

impl XdpLink {
    /// Attaches `prog` to interface `ifindex` in `mode` (`XDP_FLAGS_DRV_MODE` or
    /// `XDP_FLAGS_SKB_MODE`).
    pub fn attach(prog: &XdpProgram, ifindex: u32, mode: u32) -> io::Result<XdpLink> {
        let mut attr = LinkCreateAttr {
            prog_fd: prog.fd.as_raw_fd() as u32,
            target_ifindex: ifindex,
            attach_type: BPF_XDP,
            flags: mode,
        };
        let fd = bpf(BPF_LINK_CREATE, &mut attr)?;
        Ok(XdpLink {
            _fd: owned_fd(fd),
            mode,
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn program_encoding_matches_clang() {
        // The program written out byte by byte from the BPF instruction-set document
        // (opcode, dst|src<<4, off le16, imm le32), with the map fd 7. The kernel's verifier
        // accepting it and frames reaching the socket are checked in tests/afxdp.rs.
        let want: [[u8; 8]; 6] = [
            [0x61, 0x12, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00],
            [0x18, 0x11, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00],
            [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
            [0xb7, 0x03, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00],
            [0x85, 0x00, 0x00, 0x00, 0x33, 0x00, 0x00, 0x00],
            [0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
        ];
        for (i, (got, want)) in program(7).iter().zip(want).enumerate() {
            let mut b = [0u8; 8];
            b[0] = got.code;
            b[1] = got.regs;
            b[2..4].copy_from_slice(&got.off.to_le_bytes());
            b[4..8].copy_from_slice(&got.imm.to_le_bytes());
            assert_eq!(b, want, "instruction {i}");
        }
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        assert_eq!(std::mem::size_of::<ProgLoadAttr>(), 72);
        assert_eq!(std::mem::size_of::<MapUpdateAttr>(), 32);
    }

    #[test]
    fn name_is_truncated_and_terminated() {
        let n = name16("a_very_long_program_name");
        assert_eq!(&n[..15], b"a_very_long_pro");
        assert_eq!(n[15], 0);
    }
}
