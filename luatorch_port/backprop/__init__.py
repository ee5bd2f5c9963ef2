"""Report part 1: backpropagation through a DAG (1.1) and batch normalisation (1.2).

Lua-style modules with hand-written backward (:mod:`.modules`), a port of nn.Jacobian
(:mod:`.jacobian`), and the two checks behind ``a2 backprop dag`` (:func:`dag_table`) and
``a2 backprop batchnorm`` (:func:`batchnorm_check`).
"""

from .batchnorm import batchnorm_check, load_case, random_case
from .dag import build_dag, closed_form_grad, dag_table
from .jacobian import test_jacobian, test_jacobian_parameters
from .modules import (BatchNormalization, CAddTable, CMaxTable, CMinTable, ConcatTable, Module,
                      ParallelTable, Sequential, Sigmoid, from_lua)

__all__ = ["dag_table", "build_dag", "closed_form_grad", "batchnorm_check", "load_case", "random_case",
           "test_jacobian", "test_jacobian_parameters", "Module", "Sigmoid", "CMinTable", "CMaxTable",
           "CAddTable", "Sequential", "ParallelTable", "ConcatTable", "BatchNormalization", "from_lua"]
