"""A fixed ultrasound scanner profile and a plain benign node, shared by the ultrasound renderer tests."""

US = {"vendor": "Aurelia", "frequency_mhz": 12.0, "gain_db": 50.0, "dynamic_range_db": 60.0, "speckle_size": 1.2,
      "resolution_mm": 0.25, "depth_cm": 4.0}
PLAIN = {"short_axis_mm": 8.0, "long_short_ratio": 1.6, "hilum_present": 0, "cystic_change": 0, "calcification": 0,
         "hyperechoic": 0, "heterogeneous": 0, "vascularity": 0}
