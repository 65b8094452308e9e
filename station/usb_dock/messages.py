"""Session flags raised by the dock itself (the checks' flags are in ``checks.py``).

Each is ``{code, message}``; messages are Chinese and English, for the screen and the records.
"""

from __future__ import annotations

from station.usb_dock.checks import Flag


def pulled_out() -> Flag:
    return Flag(
        "interrupted",
        "记录仪在处理中被拔出，未清除任何文件，下次接入继续 / "
        "recorder pulled out mid-session: nothing cleared, the next dock resumes",
    )


def stopping() -> Flag:
    return Flag(
        "interrupted",
        "采集站停止，未清除任何文件 / station stopping: nothing cleared, the next dock resumes",
    )


def vault_full() -> Flag:
    return Flag(
        "vault_full",
        "采集站存储已满，已校验的文件已保存 / the station's vault is full: "
        "verified files are kept and cleared, the rest stays on the recorder",
    )


def device_error(text: str) -> Flag:
    return Flag("device_error", f"处理失败 / session failed: {text}")


def duplicate_id(serial: str, other: str) -> Flag:
    return Flag(
        "duplicate_id",
        f"设备编号 {serial} 同时出现在插槽 {other}，未挂载 / device id "
        f"{serial} is already docked in slot {other}: not mounted",
    )


def auth_failed(text: str) -> Flag:
    return Flag("auth_failed", f"身份验证失败，未挂载 / authentication failed, not mounted: {text}")


def unknown_usb(usb_serial: str | None) -> Flag:
    return Flag(
        "unknown_device",
        f"未知的 USB 存储设备（{usb_serial or '无序列号'}），未挂载 / "
        "unknown USB storage device: not a recorder, not mounted",
    )


def files_failed(n: int) -> Flag:
    return Flag(
        "files_failed",
        f"{n} 个文件读取失败，保留在记录仪上 / {n} files could not be read: left on the recorder",
    )
