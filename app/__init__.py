"""The Gradio lab UI: one module per tab over ``capo_lab.service``; it never trains and never writes SQL."""
