{
    'name': 'OdooOps: Connect as',
    'summary': "Opens a session as a user on a link signed by OdooOps (server-wide: --load=base,web,odooops_connect)",
    'version': '1.0',
    'category': 'Hidden',
    'author': 'OdooOps',
    'license': 'LGPL-3',
    'depends': ['base', 'web'],
    'data': [],
    'installable': True,
    'auto_install': False,
}
