"""What the stand-in's web declares, read (never run) to know that installing
it creates or updates tables."""


class Models:
    _inherit = 'ir.ui.view'
