"""`--show`: the frame with its current suggestions, in an OpenCV window (needs a GUI build of OpenCV)."""

from __future__ import annotations

import numpy as np

from edgeav.errors import EdgeavError


def key_action(key: int, visible: bool = True) -> str | None:
    if key == ord("q") or not visible:
        return "quit"
    return {ord("a"): "accept", ord("r"): "reject"}.get(key)


class Viewer:
    def __init__(self, title: str = "edgeav") -> None:
        import cv2

        self.cv2, self.title = cv2, title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise EdgeavError(
                "--show needs an OpenCV build with a GUI and a display",
                "pip install opencv-python (not -headless) on a desktop, or use --jsonl",
            ) from None

    def show(self, frame_rgb: np.ndarray, recs: list[dict], t: float, label: str = "") -> str | None:
        """Draw and show (`label` beside the time: what is on screen, e.g. an event); the user's action: "quit" (q
        or window closed), "accept" / "reject" (a / r: a verdict on the top suggestion, stored with --feedback), or
        None."""
        cv2 = self.cv2
        img = cv2.cvtColor(cv2.resize(frame_rgb, (640, 480), interpolation=cv2.INTER_NEAREST), cv2.COLOR_RGB2BGR)
        cv2.putText(img, f"{t:7.2f}s {label}", (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
        for i, r in enumerate(recs[:5]):
            cv2.putText(
                img,
                f"{r['score']:.2f} {r['sound']} ({r['category']})",
                (8, 48 + 22 * i),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.55,
                (0, 255, 255) if i == 0 else (220, 220, 220),
                1,
            )
        cv2.putText(img, "a: accept  r: reject  q: quit", (8, 470), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (180, 180, 180), 1)
        cv2.imshow(self.title, img)
        return key_action(cv2.waitKey(1) & 0xFF, cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1)

    def close(self) -> None:
        self.cv2.destroyWindow(self.title)
