{
    'name': 'Base',
    'version': '1.3',
    'category': 'Hidden',
    'description': "The kernel of the stand-in Odoo, needed by every module.",
    'depends': [],
    'data': [
        'data/res_company_data.xml',
        'data/ir_cron_data.xml',
    ],
    'demo': [
        'data/res_users_demo.xml',
    ],
    'installable': True,
    'auto_install': True,
    'license': 'LGPL-3',
}
