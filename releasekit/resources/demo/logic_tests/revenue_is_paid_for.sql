-- description: an order that counts as revenue has been paid for in full
select
    order_id,
    subtotal,
    amount_paid
from {{ ref('orders') }}
where is_revenue and amount_paid < subtotal
