//! FUSE requests as a guest kernel's virtio-fs driver sends them, with
//! names sent exactly as given: nothing here refuses `/` or `..`.

use super::fuse_wire::*;
use super::vhost_user::Device;
use super::virtqueue::BUF_SIZE;
use std::io;
use std::path::Path;

/// The node id of the share's root directory.
pub const ROOT: u64 = 1;

/// The most [`FuseClient::read`] and [`FuseClient::write`] move at once.
pub const MAX_IO: u32 = 256 << 10;

const HIPRIO_QUEUE: usize = 0;
const REQUEST_QUEUE: usize = 1;

/// A FUSE session with a virtio-fs server over vhost-user, as a guest
/// kernel's driver holds one; the guest side of a share, with nothing
/// between the test and the server.
///
/// Each request waits (bounded) for its reply. A server that answers
/// with an error gives `Err(Errno)`; one that does not answer in time,
/// exits, or answers out of protocol fails the test with a message saying
/// which request it was.
pub struct FuseClient {
    dev: Device,
    unique: u64,
    uid: u32,
    gid: u32,
}

impl FuseClient {
    /// Connect to the server on `sock`, set up the device and send
    /// FUSE_INIT. Requests go as guest root (uid 0, gid 0) until
    /// [`FuseClient::set_ids`].
    pub fn connect(sock: &Path) -> io::Result<FuseClient> {
        let mut f = FuseClient {
            dev: Device::connect(sock)?,
            unique: 0,
            uid: 0,
            gid: 0,
        };
        // Protocol 7.38 with no optional feature asked for.
        match f.request(INIT, 0, &[&u32s(&[7, 38, 0, 0])], 64) {
            Ok(out) if u32_at(&out, 0) == 7 => Ok(f),
            Ok(out) => Err(io::Error::other(format!(
                "FUSE_INIT: the server speaks protocol {}.{}",
                u32_at(&out, 0),
                u32_at(&out, 4)
            ))),
            Err(e) => Err(io::Error::other(format!("FUSE_INIT refused: {e}"))),
        }
    }

    /// Send the following requests as guest user `uid`, group `gid`.
    pub fn set_ids(&mut self, uid: u32, gid: u32) {
        (self.uid, self.gid) = (uid, gid);
    }

    /// Send any request: opcode `op` (as in `fuse.h`) about `nodeid`, with
    /// `args` after the header byte for byte, on the request queue, with
    /// room for `reply_room` bytes after the reply's header; the reply's
    /// body. (virtiofsd 1.14 drops the connection on a request shorter than
    /// its opcode's arguments.)
    pub fn request(
        &mut self,
        op: u32,
        nodeid: u64,
        args: &[&[u8]],
        reply_room: usize,
    ) -> Result<Vec<u8>, Errno> {
        self.send(REQUEST_QUEUE, op, nodeid, args, OUT_HEADER + reply_room)
            .map(|r| r.expect("a request that has room for a reply gets one"))
    }

    fn send(
        &mut self,
        queue: usize,
        op: u32,
        nodeid: u64,
        args: &[&[u8]],
        room: usize,
    ) -> Result<Option<Vec<u8>>, Errno> {
        let name = opcode_name(op);
        self.unique += 1;
        let len = IN_HEADER + args.iter().map(|a| a.len()).sum::<usize>();
        let mut msg = le(&[], &[len as u32, op]);
        msg.extend(le(&[self.unique, nodeid], &[self.uid, self.gid, 1, 0]));
        for a in args {
            msg.extend(*a);
        }
        let reply = self
            .dev
            .transfer(queue, &msg, room)
            .unwrap_or_else(|e| panic!("FUSE {name} (node {nodeid}): {e}"));
        if room == 0 {
            return Ok(None);
        }
        assert!(
            reply.len() >= OUT_HEADER,
            "FUSE {name} (node {nodeid}): a reply of {} bytes, shorter than its header",
            reply.len()
        );
        let (len, error, unique) = (
            u32_at(&reply, 0),
            u32_at(&reply, 4) as i32,
            u64_at(&reply, 8),
        );
        assert!(
            unique == self.unique && len as usize == reply.len() && error <= 0,
            "FUSE {name} (node {nodeid}): a reply to request {unique} (sent {}), \
             {len} bytes long in {} written, error {error}",
            self.unique,
            reply.len()
        );
        if error < 0 {
            return Err(Errno(-error));
        }
        Ok(Some(reply[OUT_HEADER..].to_vec()))
    }

    /// A reply body of at least `n` bytes, or the test fails.
    fn sized(op: u32, body: Vec<u8>, n: usize) -> Vec<u8> {
        assert!(
            body.len() >= n,
            "FUSE {}: a reply of {} bytes, {n} expected",
            opcode_name(op),
            body.len()
        );
        body
    }

    fn entry(&mut self, op: u32, nodeid: u64, args: &[&[u8]]) -> Result<Entry, Errno> {
        let body = self.request(op, nodeid, args, ENTRY_OUT)?;
        Ok(entry_at(&Self::sized(op, body, ENTRY_OUT), 0))
    }

    /// LOOKUP `name` in directory `parent`.
    pub fn lookup(&mut self, parent: u64, name: &[u8]) -> Result<Entry, Errno> {
        self.entry(LOOKUP, parent, &[&c(name)])
    }

    /// FORGET `nlookup` lookups of `node`, on the high-priority queue (it
    /// has no reply; this returns once the server has taken it).
    pub fn forget(&mut self, node: u64, nlookup: u64) {
        let _ = self.send(HIPRIO_QUEUE, FORGET, node, &[&le(&[nlookup], &[])], 0);
    }

    /// GETATTR of `node`.
    pub fn getattr(&mut self, node: u64) -> Result<Attr, Errno> {
        let body = self.request(GETATTR, node, &[&le(&[0, 0], &[])], 16 + ATTR)?;
        Ok(attr_at(&Self::sized(GETATTR, body, 16 + ATTR), 16))
    }

    /// SETATTR of `node`'s mode (chmod): the new attributes.
    pub fn setattr_mode(&mut self, node: u64, mode: u32) -> Result<Attr, Errno> {
        let mut arg = u32s(&[FATTR_MODE, 0]);
        arg.extend(le(&[0; 6], &[0, 0, 0, mode, 0, 0, 0, 0]));
        let body = self.request(SETATTR, node, &[&arg], 16 + ATTR)?;
        Ok(attr_at(&Self::sized(SETATTR, body, 16 + ATTR), 16))
    }

    /// MKDIR `name` in `parent`.
    pub fn mkdir(&mut self, parent: u64, name: &[u8], mode: u32) -> Result<Entry, Errno> {
        self.entry(MKDIR, parent, &[&u32s(&[mode, 0]), &c(name)])
    }

    /// MKNOD `name` in `parent` (`mode` includes the file type, such as
    /// `libc::S_IFIFO`).
    pub fn mknod(
        &mut self,
        parent: u64,
        name: &[u8],
        mode: u32,
        rdev: u32,
    ) -> Result<Entry, Errno> {
        self.entry(MKNOD, parent, &[&u32s(&[mode, rdev, 0, 0]), &c(name)])
    }

    /// CREATE and open `name` in `parent` (`flags` as for open(2), e.g.
    /// `libc::O_RDWR`): the new node and its file handle.
    pub fn create(
        &mut self,
        parent: u64,
        name: &[u8],
        mode: u32,
        flags: i32,
    ) -> Result<(Entry, u64), Errno> {
        let arg = u32s(&[flags as u32, mode, 0, 0]);
        let body = self.request(CREATE, parent, &[&arg, &c(name)], ENTRY_OUT + OPEN_OUT)?;
        let body = Self::sized(CREATE, body, ENTRY_OUT + OPEN_OUT);
        Ok((entry_at(&body, 0), u64_at(&body, ENTRY_OUT)))
    }

    /// SYMLINK: `name` in `parent`, pointing at `target`.
    pub fn symlink(&mut self, parent: u64, name: &[u8], target: &[u8]) -> Result<Entry, Errno> {
        self.entry(SYMLINK, parent, &[&c(name), &c(target)])
    }

    /// READLINK of `node`.
    pub fn readlink(&mut self, node: u64) -> Result<Vec<u8>, Errno> {
        self.request(READLINK, node, &[], 4096)
    }

    /// LINK: a new name `newname` in `newparent` for `node`.
    pub fn link(&mut self, node: u64, newparent: u64, newname: &[u8]) -> Result<Entry, Errno> {
        self.entry(LINK, newparent, &[&le(&[node], &[]), &c(newname)])
    }

    /// UNLINK `name` in `parent`.
    pub fn unlink(&mut self, parent: u64, name: &[u8]) -> Result<(), Errno> {
        self.request(UNLINK, parent, &[&c(name)], 0).map(drop)
    }

    /// RMDIR `name` in `parent`.
    pub fn rmdir(&mut self, parent: u64, name: &[u8]) -> Result<(), Errno> {
        self.request(RMDIR, parent, &[&c(name)], 0).map(drop)
    }

    /// RENAME `name` in `parent` to `newname` in `newparent`.
    pub fn rename(
        &mut self,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
    ) -> Result<(), Errno> {
        let args: [&[u8]; 3] = [&le(&[newparent], &[]), &c(name), &c(newname)];
        self.request(RENAME, parent, &args, 0).map(drop)
    }

    /// RENAME2: [`FuseClient::rename`] with renameat2(2) `flags`
    /// (`libc::RENAME_NOREPLACE`, `libc::RENAME_EXCHANGE`).
    pub fn rename2(
        &mut self,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        let args: [&[u8]; 3] = [&le(&[newparent], &[flags, 0]), &c(name), &c(newname)];
        self.request(RENAME2, parent, &args, 0).map(drop)
    }

    /// OPEN `node` (`flags` as for open(2)): a file handle.
    pub fn open(&mut self, node: u64, flags: i32) -> Result<u64, Errno> {
        self.open_as(OPEN, node, flags)
    }

    fn open_as(&mut self, op: u32, node: u64, flags: i32) -> Result<u64, Errno> {
        let body = self.request(op, node, &[&u32s(&[flags as u32, 0])], OPEN_OUT)?;
        Ok(u64_at(&Self::sized(op, body, OPEN_OUT), 0))
    }

    /// READ up to `len` bytes (at most [`MAX_IO`]) at `offset`.
    pub fn read(&mut self, node: u64, fh: u64, offset: u64, len: u32) -> Result<Vec<u8>, Errno> {
        assert!(
            len <= MAX_IO,
            "READ of {len} bytes: at most {MAX_IO} at once"
        );
        let arg = le(&[fh, offset], &[len, 0, 0, 0, 0, 0]);
        self.request(READ, node, &[&arg], len as usize)
    }

    /// WRITE `data` (at most [`MAX_IO`] bytes) at `offset`: how many bytes
    /// the server wrote.
    pub fn write(&mut self, node: u64, fh: u64, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        assert!(
            data.len() <= MAX_IO as usize && MAX_IO as usize + 128 <= BUF_SIZE,
            "WRITE of {} bytes: at most {MAX_IO} at once",
            data.len()
        );
        let arg = le(&[fh, offset], &[data.len() as u32, 0, 0, 0, 0, 0]);
        let body = self.request(WRITE, node, &[&arg, data], 8)?;
        Ok(u32_at(&Self::sized(WRITE, body, 8), 0))
    }

    /// RELEASE the file handle `fh` of `node`.
    pub fn release(&mut self, node: u64, fh: u64) -> Result<(), Errno> {
        let arg = le(&[fh], &[0, 0, 0, 0]);
        self.request(RELEASE, node, &[&arg], 0).map(drop)
    }

    /// OPENDIR `node`: a directory handle.
    pub fn opendir(&mut self, node: u64) -> Result<u64, Errno> {
        self.open_as(OPENDIR, node, libc::O_RDONLY)
    }

    /// RELEASEDIR the handle `fh` of directory `node`.
    pub fn releasedir(&mut self, node: u64, fh: u64) -> Result<(), Errno> {
        let arg = le(&[fh], &[0, 0, 0, 0]);
        self.request(RELEASEDIR, node, &[&arg], 0).map(drop)
    }

    /// The names in directory `node` (`.` and `..` included), read with
    /// OPENDIR, READDIR until the end and RELEASEDIR.
    pub fn readdir(&mut self, node: u64) -> Result<Vec<Vec<u8>>, Errno> {
        let fh = self.opendir(node)?;
        let mut names = Vec::new();
        let mut offset = 0;
        for round in 0.. {
            assert!(
                round < 100_000,
                "READDIR of node {node}: no end after {round} replies"
            );
            let arg = le(&[fh, offset], &[64 << 10, 0, 0, 0, 0, 0]);
            let body = self.request(READDIR, node, &[&arg], 64 << 10)?;
            if body.is_empty() {
                break;
            }
            let mut at = 0;
            while at + 24 <= body.len() {
                let namelen = u32_at(&body, at + 16) as usize;
                let name = body
                    .get(at + 24..at + 24 + namelen)
                    .unwrap_or_else(|| panic!("READDIR: a dirent's name runs past the reply"));
                names.push(name.to_vec());
                offset = u64_at(&body, at + 8);
                at += (24 + namelen).next_multiple_of(8);
            }
        }
        self.releasedir(node, fh)?;
        Ok(names)
    }
}
