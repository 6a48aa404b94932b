alter table backstop.error_groups drop column template_fixed;
