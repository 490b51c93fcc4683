"""The tooling of the course itself.

quiz        the widget quiz engine behind every "Check your understanding"
grading     release, check and grade the nbgrader exercises
kernelpool  Python kernels started ahead of time for grading
notebooks   keep committed notebooks clean
cli         the ``distlab`` command
"""
