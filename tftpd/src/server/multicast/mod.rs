//! RFC 2090 groups in the shell: the registry through which a request joins the group
//! already serving its file, and the loop that drives one group (`proto::multicast`) on its
//! socket. The group runs inside the task of the request that started it; later requests
//! hand their client (and its admission ticket) over and end.

mod driver;
mod registry;
mod serve;

pub use self::registry::Groups;
pub use self::serve::{Fallback, Request, serve};
