from .settings import *

MIDDLEWARE = []
