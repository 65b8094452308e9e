"""What ``station verify`` can find, each with a plain meaning a supervisor understands (R7)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# code -> (severity, 中文, English). Severity "error": evidence or its record was changed or lost;
# "warning": a protection is weaker than it should be; "info": could not be checked.
MEANINGS: dict[str, tuple[str, str, str]] = {
    "file.changed": (
        "error",
        "原始录像文件内容已改变（哈希值不符）：文件损坏或被篡改。",
        "An original recording's content changed (its SHA-256 no longer matches): the file is "
        "damaged or was tampered with.",
    ),
    "file.missing": (
        "error",
        "目录中登记的原始录像在存储中不存在：文件被绕过采集站删除或移走。",
        "An original recording listed in the catalog is gone from the vault: it was deleted or "
        "moved behind the station's back.",
    ),
    "file.unreadable": (
        "error",
        "原始录像文件无法读取：磁盘故障或权限被改动。",
        "An original recording cannot be read: disk fault or changed permissions.",
    ),
    "file.unknown": (
        "error",
        "存储中有目录未登记的文件：有人绕过采集站放入或改名了文件。",
        "A file in the vault the catalog does not know: someone put or renamed it there outside "
        "the station.",
    ),
    "file.writable": (
        "warning",
        "原始录像文件不再是只读：保护被解除，文件可能被改写。",
        "An original recording is no longer read-only (mode 0444): its protection was removed.",
    ),
    "derivative.changed": (
        "error",
        "转码副本内容已改变（哈希值不符）：副本损坏或被篡改，原始文件不受影响。",
        "An archival derivative's content changed (hash mismatch): damaged or tampered with; the "
        "original is not affected.",
    ),
    "derivative.missing": (
        "error",
        "目录中登记的转码副本不存在：被删除或移走。",
        "An archival derivative listed in the catalog is gone from the vault.",
    ),
    "catalog.row_edited": (
        "error",
        "录像的目录记录与采集时的审计记录不符：数据库被直接修改。",
        "A recording's catalog row differs from what the audit log recorded when it was stored: "
        "the database was edited directly.",
    ),
    "catalog.tally_drift": (
        "error",
        "保存期统计表与录像及案件关联不符：数据库被绕过触发器修改；保存期报表在重建前可能有误。",
        "The retention tallies no longer match the recordings and their case links: the "
        "database was changed around its triggers; the retention report may be wrong until "
        "they are rebuilt.",
    ),
    "catalog.row_deleted": (
        "error",
        "审计记录中已入库的录像在目录中不存在：目录记录被直接删除。",
        "A recording the audit log says was stored has no catalog row: the row was deleted "
        "directly.",
    ),
    "catalog.row_unaudited": (
        "error",
        "目录中有一条录像记录没有任何审计记录：绕过采集站直接写入。",
        "A recording row in the catalog has no audit entry at all: it was written into the "
        "database outside the station.",
    ),
    "catalog.row_unsealed": (
        "info",
        "该录像的审计记录不含可比对的字段，无法检查目录记录是否被改。",
        "The audit entries of this recording carry no sealed fields; its catalog row cannot be "
        "checked for edits.",
    ),
    "audit.entry_edited": (
        "error",
        "审计记录被改动：内容与其自身哈希不符。",
        "An audit entry was edited: it no longer matches its own hash.",
    ),
    "audit.entry_removed": (
        "error",
        "审计记录被删除：序号出现缺口。",
        "Audit entries were removed: there is a gap in the sequence numbers.",
    ),
    "audit.entry_relinked": (
        "error",
        "审计记录链断开：某条记录与前一条的链接不符（前面的记录被改动或删除）。",
        "The audit chain is broken: an entry's link to the one before does not match (an "
        "earlier entry was edited or removed).",
    ),
    "audit.entry_unreadable": (
        "error",
        "审计记录内容已无法解析：被直接改写。",
        "An audit entry's data can no longer be read: it was overwritten directly.",
    ),
    "checkpoint.rewritten": (
        "error",
        "审计日志与已签名的检查点不一致：检查点之前的记录被改动、删除或重算。",
        "The audit log is not consistent with a signed checkpoint: entries before that "
        "checkpoint were edited, removed or re-hashed.",
    ),
    "checkpoint.truncated": (
        "error",
        "审计日志比已签名的检查点还短：末尾的记录被删除。",
        "The audit log is shorter than a signed checkpoint: entries at its end were deleted.",
    ),
    "checkpoint.forged": (
        "error",
        "检查点签名无效或不是本站密钥签名：检查点被伪造或改动。",
        "A checkpoint's signature is invalid or not by this station's key: it was forged or "
        "altered.",
    ),
    "checkpoint.wrong_key": (
        "error",
        "检查点由签发时已不再使用（已轮换或丢失）的密钥签名：可能是旧密钥被盗用后伪造。",
        "A checkpoint is signed by a key that was no longer current for its size (rotated or "
        "lost): possibly forged with an old key.",
    ),
    "audit.key_replaced": (
        "error",
        "签名密钥或验证公钥与审计记录中的当前密钥不符：密钥在采集站之外被替换。",
        "The signing key or verifier key is not the one the audit log names as current: it "
        "was replaced outside the station.",
    ),
    "audit.key_lost": (
        "warning",
        "签名密钥曾经丢失并由管理员更换（见审计记录）：丢失前的检查点仍可用旧公钥核对。",
        "The signing key was lost once and replaced by an administrator (see the audit log); "
        "checkpoints from before remain checkable with the old verifier key.",
    ),
    "checkpoint.foreign": (
        "warning",
        "存储中有其他日志（其他采集站）的检查点。",
        "A checkpoint of another log (another station) is stored here.",
    ),
    "checkpoint.none": (
        "info",
        "尚无签名检查点：若审计记录被整体重算将无法发现。请运行 station checkpoint make。",
        "No signed checkpoint yet: a wholly re-hashed audit log could not be detected. Run "
        "`station checkpoint make`.",
    ),
    "vault.repaired": (
        "warning",
        "采集时发现库内原始文件已损坏，已用本次重新校验的记录仪副本原样修复；损坏的文件保留在 "
        "quarantine/ 供调查。请查明文件为何被改变。",
        "An ingest found an original in the vault damaged and restored it from the recorder's "
        "copy it had just verified; the damaged file is kept in quarantine/ for investigation. "
        "Find out how the original came to change.",
    ),
    "clear.unfinished": (
        "warning",
        "已记录清除记录仪或收件箱文件的意图，但没有结果记录：清除中途中断，请核对所列文件是否仍在。"
        "所列文件均已校验入库。",
        "The intent to delete files on a recorder or in the inbox was recorded, but no result "
        "followed: clearing was cut off. Check which of the listed files are still there; each "
        "was verified in the vault first.",
    ),
    "checkpoint.unlisted": (
        "error",
        "检查点文件在目录中没有对应记录：检查点表被直接修改。",
        "A checkpoint file has no row in the catalog: the checkpoint table was edited directly.",
    ),
    "protected.row_edited": (
        "error",
        "保护性记录（案件、关联、保全、长期保存标记、保存期状态、账号、设备登记）与审计记录不符："
        "数据库被直接修改。",
        "A protective fact (case, case link, hold, long-term mark, retention state, account, "
        "device enrolment) differs from what the audit log sealed: the database was edited "
        "directly.",
    ),
    "protected.row_deleted": (
        "error",
        "审计记录中存在的保护性记录在数据库中不见了：被直接删除（可能使录像被提前清除）。",
        "A protective fact the audit log sealed is gone from the database: it was deleted "
        "directly (footage could be purged early).",
    ),
    "protected.row_inserted": (
        "error",
        "数据库中有一条保护性记录没有对应的审计记录：绕过采集站直接写入。",
        "A protective fact in the database has no sealing audit entry: it was written outside "
        "the station.",
    ),
    "audit.tail_truncated": (
        "error",
        "审计日志末尾的记录被删除：日志比目录外保存的日志头还短。",
        "Entries at the end of the audit log were deleted: the log is shorter than the head "
        "kept outside the catalog.",
    ),
    "audit.tail_rewritten": (
        "error",
        "审计日志末尾被删除后重写：日志头记录的那条记录已不同。",
        "The end of the audit log was deleted and written again: the entry the head recorded "
        "is not there any more.",
    ),
    "audit.head_missing": (
        "warning",
        "目录外的审计日志头文件缺失或无法读取：无法发现末尾记录被删除。",
        "The audit head file outside the catalog is missing or unreadable: deletion of the "
        "newest entries cannot be detected.",
    ),
    "audit.actor_unknown": (
        "warning",
        "一条改变保护性事实的审计记录署名的不是当时有效的账号：绕过身份核验写入，或被伪造。",
        "An audit entry that changed a protective fact names an actor who was not an enabled "
        "account at that point of the log: written around the proof of identity, or forged.",
    ),
    "audit.time_backwards": (
        "warning",
        "审计记录的时间倒退：当时系统时钟有误或被调整过。",
        "Audit entry times go backwards: the system clock was wrong or was set back then.",
    ),
}


@dataclass(frozen=True)
class Finding:
    code: str
    subject: str  # what: a sha256, an audit seq, a file path
    where: str  # where: a path in the vault, a table, a checkpoint file
    detail: str = ""
    data: dict[str, Any] | None = None

    @property
    def severity(self) -> str:
        return MEANINGS[self.code][0]

    @property
    def meaning_zh(self) -> str:
        return MEANINGS[self.code][1]

    @property
    def meaning_en(self) -> str:
        return MEANINGS[self.code][2]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(severity=self.severity, meaning_zh=self.meaning_zh, meaning_en=self.meaning_en)
        return d
