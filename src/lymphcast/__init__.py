"""LymphCast: preoperative risk of lateral neck lymph node metastasis (N1b) in papillary thyroid carcinoma."""

__version__ = "0.1.0"
