{
    'name': 'Initial Setup Tools',
    'version': '1.0',
    'category': 'Hidden',
    'depends': ['base', 'web'],
    'auto_install': True,
    'installable': True,
    'license': 'LGPL-3',
}
