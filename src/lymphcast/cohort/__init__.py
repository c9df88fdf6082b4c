"""Cohort folder format: schema, validation, reading and writing, splits."""

from .cohort import Cohort
from .errors import CohortError, LymphCastError, Problem
from .fields import STANDARD_FIELDS, FieldSpec
from .io import atomic_dir, atomic_file, read_cohort, write_cohort
from .schema import Centre, CohortMeta
from .validate import check_cohort

__all__ = ["Cohort", "CohortError", "LymphCastError", "Problem", "FieldSpec", "STANDARD_FIELDS", "Centre",
           "CohortMeta", "read_cohort", "write_cohort", "check_cohort", "atomic_dir", "atomic_file"]
