"""Explanations of model outputs: Grad-CAM heat maps of the ultrasound node model and the report gallery.

torch and MONAI are imported only when a heat map is computed, so importing this package stays light.
"""

from .gallery import CATEGORIES, GalleryEntry, build_gallery, call_category, choose_cases, report_items
from .gradcam import heatmap_picture, node_heatmaps, overlay, save_heatmap_png, view_heatmaps

__all__ = ["CATEGORIES", "GalleryEntry", "build_gallery", "call_category", "choose_cases", "heatmap_picture",
           "node_heatmaps", "overlay", "report_items", "save_heatmap_png", "view_heatmaps"]
