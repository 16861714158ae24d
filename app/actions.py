"""The window's actions: one place for their icons, shortcuts and tooltips."""

from __future__ import annotations

from dataclasses import dataclass

import qtawesome as qta
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QWidget

Key = QKeySequence.StandardKey


def make_action(
    parent: QWidget,
    text: str,
    icon: str | None = None,
    shortcuts: list[QKeySequence | str | Key] | None = None,
    tip: str | None = None,
    checkable: bool = False,
) -> QAction:
    """A QAction whose tooltip names its shortcut, e.g. "Open a photo (Ctrl+O)"."""
    action = QAction(text, parent)
    if icon:
        action.setIcon(qta.icon(icon))
    keys: list[QKeySequence] = []
    for shortcut in shortcuts or []:
        if isinstance(shortcut, Key):
            keys.extend(QKeySequence.keyBindings(shortcut))
        else:
            keys.append(QKeySequence(shortcut))
    if keys:
        action.setShortcuts(keys)
    action.setCheckable(checkable)
    tip = tip or text.replace("&", "").rstrip("…")
    if keys:
        tip = f"{tip} ({keys[0].toString(QKeySequence.SequenceFormat.NativeText)})"
    action.setToolTip(tip)
    action.setStatusTip(tip)
    parent.addAction(action)
    return action


@dataclass
class Actions:
    """Every action of the main window."""

    open: QAction
    paste: QAction
    save: QAction
    save_as: QAction
    import_mask: QAction
    export_mask: QAction
    quit: QAction
    undo: QAction
    redo: QAction
    brush: QAction
    eraser: QAction
    rectangle: QAction
    lasso: QAction
    smaller: QAction
    bigger: QAction
    grow: QAction
    shrink: QAction
    feather: QAction
    invert: QAction
    clear: QAction
    show_mask: QAction
    fit: QAction
    actual: QAction
    zoom_in: QAction
    zoom_out: QAction
    compare: QAction
    inpaint: QAction
    cancel: QAction
    previous_sample: QAction
    next_sample: QAction
    tools: QActionGroup


def create_actions(w: QWidget) -> Actions:
    a = make_action
    tools = QActionGroup(w)
    brush = a(
        w,
        "&Brush",
        "mdi6.brush",
        ["B"],
        "Brush: paint the hole; right button erases",
        checkable=True,
    )
    eraser = a(w, "&Eraser", "mdi6.eraser", ["E"], "Eraser: remove from the hole", checkable=True)
    rectangle = a(
        w,
        "&Rectangle",
        "mdi6.rectangle-outline",
        ["R"],
        "Rectangle: drag to fill a box; right button removes",
        checkable=True,
    )
    lasso = a(
        w,
        "&Lasso",
        "mdi6.lasso",
        ["L"],
        "Lasso: draw around an area to fill it; right button removes",
        checkable=True,
    )
    for tool in (brush, eraser, rectangle, lasso):
        tools.addAction(tool)
    brush.setChecked(True)
    return Actions(
        open=a(w, "&Open…", "mdi6.folder-open-outline", [Key.Open], "Open a photo"),
        paste=a(
            w, "&Paste Photo", "mdi6.content-paste", [Key.Paste], "Open the image on the clipboard"
        ),
        save=a(w, "&Save", "mdi6.content-save-outline", [Key.Save], "Save the photo"),
        save_as=a(
            w,
            "Save &As…",
            "mdi6.content-save-edit-outline",
            [Key.SaveAs],
            "Save the photo under a new name",
        ),
        import_mask=a(
            w,
            "&Import Mask…",
            "mdi6.file-import-outline",
            ["Ctrl+Shift+I"],
            "Load a mask from a PNG (white = hole)",
        ),
        export_mask=a(
            w,
            "E&xport Mask…",
            "mdi6.file-export-outline",
            ["Ctrl+Shift+E"],
            "Save the mask as a PNG (white = hole)",
        ),
        quit=a(w, "&Quit", "mdi6.exit-to-app", [Key.Quit]),
        undo=a(w, "&Undo", "mdi6.undo", [Key.Undo]),
        redo=a(w, "&Redo", "mdi6.redo", ["Ctrl+Shift+Z", "Ctrl+Y"]),
        brush=brush,
        eraser=eraser,
        rectangle=rectangle,
        lasso=lasso,
        smaller=a(w, "Smaller Brush", "mdi6.minus-circle-outline", ["["], "Smaller brush"),
        bigger=a(w, "Bigger Brush", "mdi6.plus-circle-outline", ["]"], "Bigger brush"),
        grow=a(w, "&Grow", "mdi6.arrow-expand-all", [], "Grow the hole by the amount"),
        shrink=a(w, "&Shrink", "mdi6.arrow-collapse-all", [], "Shrink the hole by the amount"),
        feather=a(w, "&Feather", "mdi6.blur", [], "Smooth the outline of the hole over the amount"),
        invert=a(w, "&Invert", "mdi6.invert-colors", ["Ctrl+I"], "Swap hole and keep"),
        clear=a(w, "&Clear", "mdi6.selection-remove", ["Delete"], "Clear the whole mask"),
        show_mask=a(
            w, "Show &Mask", "mdi6.eye-outline", ["M"], "Show or hide the mask", checkable=True
        ),
        fit=a(w, "&Fit to Window", "mdi6.fit-to-screen-outline", ["Ctrl+0"]),
        actual=a(w, "&Actual Size (100%)", "mdi6.numeric-1-box-outline", ["Ctrl+1"]),
        zoom_in=a(w, "Zoom &In", "mdi6.magnify-plus-outline", [Key.ZoomIn]),
        zoom_out=a(w, "Zoom &Out", "mdi6.magnify-minus-outline", [Key.ZoomOut]),
        compare=a(
            w,
            "Compare with &Original",
            "mdi6.compare",
            [],
            "Hold to see the photo as opened (or hold Tab)",
        ),
        inpaint=a(
            w,
            "&Inpaint",
            "mdi6.auto-fix",
            ["Ctrl+Return", "Ctrl+Enter"],
            "Fill the hole with the chosen model",
        ),
        cancel=a(w, "&Cancel", "mdi6.stop-circle-outline", ["Esc"], "Stop the running job"),
        previous_sample=a(w, "&Previous Sample", "mdi6.chevron-left", [",", "Left"]),
        next_sample=a(w, "&Next Sample", "mdi6.chevron-right", [".", "Right"]),
        tools=tools,
    )
