"""`--show`: the frame with its current suggestions, in an OpenCV window (needs a GUI build of OpenCV)."""
from __future__ import annotations

import numpy as np

from edgeav.errors import EdgeavError


class Viewer:
    def __init__(self, title: str = "edgeav"):
        import cv2

        self.cv2, self.title = cv2, title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise EdgeavError("--show needs an OpenCV build with a GUI and a display",
                              "pip install opencv-python (not -headless) on a desktop, or use --jsonl") from None

    def show(self, frame_rgb: np.ndarray, recs: list[dict], t: float) -> bool:
        """Draw and show; False when the user pressed q or closed the window."""
        cv2 = self.cv2
        img = cv2.cvtColor(cv2.resize(frame_rgb, (640, 480), interpolation=cv2.INTER_NEAREST), cv2.COLOR_RGB2BGR)
        cv2.putText(img, f"{t:7.2f}s", (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
        for i, r in enumerate(recs[:5]):
            cv2.putText(img, f"{r['score']:.2f} {r['sound']} ({r['category']})", (8, 48 + 22 * i),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 255, 255) if i == 0 else (220, 220, 220), 1)
        cv2.imshow(self.title, img)
        return (cv2.waitKey(1) & 0xFF) != ord("q") and cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1

    def close(self):
        self.cv2.destroyWindow(self.title)
